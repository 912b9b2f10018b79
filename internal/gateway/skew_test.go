package gateway_test

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/gateway"
)

// TestAuthorizerWithoutSkew: an authorizer whose skew is 0 (written as 0s)
// allows none: a token is refused from the second of its exp on, which the
// default skew of 30 s would still accept.
func TestAuthorizerWithoutSkew(t *testing.T) {
	f := start(t)
	noSkew := *f.Cfg
	noSkew.Gateway.Authorizers = slices.Clone(f.Cfg.Gateway.Authorizers)
	noSkew.Gateway.Authorizers[0].Skew = 0
	newGateway := func(cfg *config.Config) *gateway.Gateway {
		gw, err := gateway.New(cfg, gateway.Options{IDPURL: f.App.URL(app.IDP), Now: f.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(gw.Close)
		return gw
	}
	withDefault, withNone := newGateway(f.Cfg), newGateway(&noSkew)
	tok := f.issue("demo-web", "alice", "https://api.demo.local/orders.read")
	req := func(gw *gateway.Gateway) int {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/orders/1", nil)
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		gw.ServeHTTP(rec, r)
		return rec.Code
	}
	exp := int64(claimsOf(t, tok.AccessToken)["exp"].(float64))
	f.Clock.Advance(time.Unix(exp, 0).Sub(f.Clock.Now()))
	if code := req(withDefault); code != 200 {
		t.Errorf("at exp, default skew (%v): %d", f.Cfg.Gateway.Authorizers[0].Skew, code)
	}
	if code := req(withNone); code != 401 {
		t.Errorf("at exp, no skew: %d", code)
	}
}

package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/gateway"
)

// ownGateway runs a gateway of cfg in a server of its own (as `writ serve
// --only gateway` would), with the idp at idpURL, and points f at it.
func (f *fx) ownGateway(cfg *config.Config, idpURL string) *gateway.Gateway {
	f.t.Helper()
	gw, err := gateway.New(cfg, gateway.Options{IDPURL: idpURL})
	if err != nil {
		f.t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	f.t.Cleanup(func() { srv.Close(); gw.Close() })
	f.gw = srv.URL
	return gw
}

// TestIssuerDown runs a gateway in its own server (as `writ serve --only
// gateway` would), stops the idp, and checks that valid tokens whose keys
// the gateway has cached are still accepted.
func TestIssuerDown(t *testing.T) {
	up := newUpstream(t)
	f := startWithUpstream(t, up.srv.URL)
	f.ownGateway(f.Cfg, f.App.URL(app.IDP))

	seen := f.issue("demo-web", "alice", "https://api.demo.local/orders.read")
	fresh := f.issue("demo-web", "bob", "https://api.demo.local/orders.read")
	if resp := f.do("GET", "/orders/1", "Bearer "+seen.AccessToken, nil); resp.StatusCode != 200 {
		t.Fatalf("with the idp up: %d", resp.StatusCode)
	}
	f.App.Stop() // the idp goes away
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get(f.App.URL(app.IDP) + "/" + poolID + "/.well-known/jwks.json"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idp did not stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for name, tok := range map[string]string{"verified before": seen.AccessToken, "never seen, cached key": fresh.AccessToken} {
		if resp := f.do("GET", "/orders/1", "Bearer "+tok, nil); resp.StatusCode != 200 {
			t.Errorf("%s, idp down: %d", name, resp.StatusCode)
		}
	}
	if resp := f.do("GET", "/orders/1", "Bearer garbage.token.here", nil); resp.StatusCode != 401 {
		t.Errorf("bad token, idp down: %d", resp.StatusCode)
	}
}

// TestIssuerNeverReached: a gateway that has never had its issuer's keys
// cannot tell a good token from a bad one. It answers 503 (its failure,
// not the caller's: no invalid_token), audits an error, and is not ready.
func TestIssuerNeverReached(t *testing.T) {
	up := newUpstream(t)
	f := startWithUpstream(t, up.srv.URL)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // a port nothing listens on
	cfg := *f.Cfg
	cfg.Gateway.Authorizers = slices.Clone(cfg.Gateway.Authorizers)
	cfg.Gateway.Authorizers[0].Issuer = dead.URL + "/" + poolID
	gw := f.ownGateway(&cfg, dead.URL)
	if err := gw.Ready(); err == nil {
		t.Fatal("ready without the issuer's keys")
	}
	tok := f.issue("demo-web", "alice", "https://api.demo.local/orders.read")
	resp := f.do("GET", "/orders/1", "Bearer "+tok.AccessToken, nil)
	if resp.StatusCode != 503 || resp.Header.Get("WWW-Authenticate") != "" || up.hits.Load() != 0 {
		t.Fatalf("valid token, issuer never reached: %d %q, %d upstream calls", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), up.hits.Load())
	}
	// Without a token there is nothing to verify: still the caller's 401.
	if resp := f.do("GET", "/orders/1", "", nil); resp.StatusCode != 401 {
		t.Fatalf("no token, issuer never reached: %d", resp.StatusCode)
	}
}

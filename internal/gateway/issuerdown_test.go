package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/gateway"
)

// TestIssuerDown runs a gateway in its own server (as `writ serve --only
// gateway` would), stops the idp, and checks that valid tokens whose keys
// the gateway has cached are still accepted.
func TestIssuerDown(t *testing.T) {
	up := newUpstream(t)
	f := startWithUpstream(t, up.srv.URL)
	gw, err := gateway.New(f.Cfg, gateway.Options{IDPURL: f.App.URL(app.IDP)})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw)
	defer srv.Close()
	f.gw = srv.URL

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

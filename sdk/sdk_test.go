package sdk_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/userpool"
	"github.com/writ-id/writ/sdk"
)

const poolID = "us-east-1_WritDemo1"

func issue(t *testing.T, env *apptest.Env, scope ...string) string {
	ctx := context.Background()
	p, _ := env.App.Pools.Pool(poolID)
	c, _ := env.App.Core.Store.GetClient(ctx, "demo-web")
	u, _ := env.App.Core.Store.GetUser(ctx, poolID, "alice")
	tok, err := p.Issue(ctx, userpool.Grant{Client: c, User: u, Scope: scope, AuthTime: env.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// TestMiddlewareAndTransport runs two services: A verifies the caller and
// calls B through Transport, exchanging the token for B's audience.
func TestMiddlewareAndTransport(t *testing.T) {
	env := apptest.Start(t)
	iss := env.App.URL(app.IDP) + "/" + poolID

	bv := sdk.NewVerifier(sdk.Config{Issuer: iss, Audiences: []string{"files-service"}})
	defer bv.Close()
	b := httptest.NewServer(bv.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := sdk.FromContext(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"sub": id.Subject, "aud": id.Audience, "chain": id.ActorChain, "rid": sdk.RequestID(r.Context())})
	})))
	defer b.Close()

	av := sdk.NewVerifier(sdk.Config{Issuer: iss, Audiences: []string{"demo-web"}, Scopes: []string{"https://api.demo.local/orders.read"}})
	defer av.Close()
	next := &http.Client{Transport: &sdk.Transport{Audience: "files-service",
		Exchange: &sdk.ClientCredentials{TokenURL: iss + "/oauth2/token", ClientID: "orders-service", ClientSecret: "orders-demo-secret"}}}
	a := httptest.NewServer(av.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", b.URL+"/x", nil)
		resp, err := next.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})))
	defer a.Close()

	call := func(tok string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", a.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Request-Id", "rid-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, m := call(issue(t, env, "https://api.demo.local/orders.read"))
	if status != 200 || m["rid"] != "rid-1" {
		t.Fatalf("%d %v", status, m)
	}
	if aud, _ := json.Marshal(m["aud"]); string(aud) != `["files-service"]` {
		t.Errorf("B saw aud %s", aud)
	}
	if chain, _ := json.Marshal(m["chain"]); string(chain) != `["orders-service"]` {
		t.Errorf("B saw chain %s", chain)
	}
	if status, _ := call(issue(t, env, "openid")); status != 403 {
		t.Errorf("missing scope: %d", status)
	}
	if status, _ := call("garbage"); status != 401 {
		t.Errorf("bad token: %d", status)
	}
	// B refuses A's own (unexchanged) token: wrong audience.
	fwd := &http.Client{Transport: &sdk.Transport{}}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", b.URL, nil)
	req.Header.Set("Authorization", "Bearer "+issue(t, env, "openid"))
	resp, _ := fwd.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("wrong audience at B: %d", resp.StatusCode)
	}
}

package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
	"github.com/writ-id/writ/sdk"
)

// withAuditScope declares the resource server "writ" with the scope
// audit.write and grants it to orders-service.
func withAuditScope(c *config.Config) {
	p := &c.UserPools[0]
	p.ResourceServers = append(p.ResourceServers, config.ResourceServer{Identifier: "writ", Scopes: []string{"audit.write"}})
	for i := range p.Clients {
		if p.Clients[i].ClientID == "orders-service" {
			p.Clients[i].Scopes = append(p.Clients[i].Scopes, sdk.AuditScope)
		}
	}
}

// clientToken gets a client_credentials access token.
func clientToken(t *testing.T, tokenURL, id, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("client_credentials for %s: %d %v", id, resp.StatusCode, err)
	}
	return body.AccessToken
}

// TestServiceEventsInTheTrail: a service built on the SDK sends an event
// about a request it served; the trail has it under the request id, with
// the service as component, in a chain that verifies. Posts without a
// valid token, without the scope or with a bad event are refused and store
// nothing.
func TestServiceEventsInTheTrail(t *testing.T) {
	env := apptest.Start(t, withAuditScope)
	ctx := context.Background()
	issuer := env.App.URL(app.IDP) + "/us-east-1_WritDemo1"
	ingestURL := env.App.URL(app.Identity) + "/audit/events"

	// The orders service: the SDK's middleware, and an audit client with
	// its own client credentials.
	trail, err := sdk.NewAuditClient(sdk.AuditConfig{URL: ingestURL, Component: "orders",
		Credentials: sdk.ClientCredentials{TokenURL: issuer + "/oauth2/token", ClientID: "orders-service", ClientSecret: "orders-demo-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	v := sdk.NewVerifier(sdk.Config{Issuer: issuer, Audiences: []string{"demo-web"}})
	defer v.Close()
	orders := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trail.Record(r.Context(), sdk.AuditEvent{Action: "orders:Get", Outcome: sdk.AuditDeny, Reason: "order belongs to someone else", Resource: "order/7"})
		http.Error(w, "not yours", http.StatusForbidden)
	})))
	defer orders.Close()

	p, _ := env.App.Pools.Pool("us-east-1_WritDemo1")
	cl, _ := env.App.Core.Store.GetClient(ctx, "demo-web")
	alice, _ := env.App.Core.Store.GetUser(ctx, "us-east-1_WritDemo1", "alice")
	tok, err := p.Issue(ctx, userpool.Grant{Client: cl, User: alice, Scope: []string{"https://api.demo.local/orders.read"}, AuthTime: env.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", orders.URL+"/orders/7", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("X-Request-Id", "svc-req-1")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("orders: %d", resp.StatusCode)
	}
	if err := trail.Close(ctx); err != nil { // sends what is queued
		t.Fatalf("audit client: %v", err)
	}
	if trail.Dropped() != 0 {
		t.Fatalf("dropped %d events", trail.Dropped())
	}

	evs, err := env.App.Core.Store.ListAudit(ctx, store.AuditFilter{RequestID: "svc-req-1"})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events of svc-req-1: %v %+v", err, evs)
	}
	e := evs[0]
	if e.Component != "orders" || e.Action != "orders:Get" || e.Outcome != "deny" || e.Reason != "order belongs to someone else" ||
		e.Resource != "order/7" || e.Sub != alice.Sub || e.ClientID != "orders-service" || e.PoolID != "us-east-1_WritDemo1" ||
		e.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || e.Stream != env.App.Ingested.Stream() {
		t.Errorf("ingested event: %+v", e)
	}

	// Refusals.
	post := func(auth, body string) (int, http.Header, map[string]string) {
		req, _ := http.NewRequest("POST", ingestURL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]string
		json.Unmarshal(b, &out)
		return resp.StatusCode, resp.Header, out
	}
	withID, err := p.Issue(ctx, userpool.Grant{Client: cl, User: alice, Scope: []string{"openid"}, IDToken: true, AuthTime: env.Clock.Now()})
	if err != nil || withID.IDToken == "" {
		t.Fatalf("ID token: %v", err)
	}
	event := `[{"component":"orders","action":"orders:Get","outcome":"allow","request_id":"svc-req-bad"}]`
	ordersTok := clientToken(t, issuer+"/oauth2/token", "orders-service", "orders-demo-secret", sdk.AuditScope)
	filesTok := clientToken(t, issuer+"/oauth2/token", "files-service", "files-demo-secret", "")
	for _, c := range []struct {
		what, auth, body string
		status           int
		code, www        string
	}{
		{"no token", "", event, 401, "invalid_token", `Bearer realm="writ"`},
		{"a forged token", "Bearer " + ordersTok[:len(ordersTok)-4] + "AAAA", event, 401, "invalid_token", `Bearer realm="writ", error="invalid_token"`},
		{"not a JWT", "Bearer abc", event, 401, "invalid_token", `Bearer realm="writ", error="invalid_token"`},
		{"an ID token", "Bearer " + withID.IDToken, event, 401, "invalid_token", `Bearer realm="writ", error="invalid_token"`},
		{"a user's token without the scope", "Bearer " + tok.AccessToken, event, 403, "insufficient_scope", `Bearer realm="writ", error="insufficient_scope"`},
		{"a client without the scope", "Bearer " + filesTok, event, 403, "insufficient_scope", `Bearer realm="writ", error="insufficient_scope"`},
		{"a reserved component", "Bearer " + ordersTok, strings.Replace(event, `"orders"`, `"gateway"`, 1), 400, "invalid_request", ""},
		{"a bad outcome in the second event", "Bearer " + ordersTok, `{"component":"orders","action":"a","outcome":"allow","request_id":"svc-req-bad"}
{"component":"orders","action":"a","outcome":"maybe","request_id":"svc-req-bad"}`, 400, "invalid_request", ""},
		{"an unknown field", "Bearer " + ordersTok, `[{"component":"orders","action":"a","outcome":"allow","request_id":"svc-req-bad","user":"x"}]`, 400, "invalid_request", ""},
		{"no action", "Bearer " + ordersTok, `[{"component":"orders","outcome":"allow","request_id":"svc-req-bad"}]`, 400, "invalid_request", ""},
		{"a control character", "Bearer " + ordersTok, `[{"component":"orders","action":"a\u001b[2J","outcome":"allow","request_id":"svc-req-bad"}]`, 400, "invalid_request", ""},
		{"too many events", "Bearer " + ordersTok, "[" + strings.Repeat(strings.Trim(event, "[]")+",", 500) + strings.Trim(event, "[]") + "]", 400, "invalid_request", ""},
		{"a body over 1 MiB", "Bearer " + ordersTok, `[{"component":"orders","action":"a","outcome":"allow","reason":"` + strings.Repeat("x", 1<<20) + `"}]`, 413, "invalid_request", ""},
	} {
		status, hdr, body := post(c.auth, c.body)
		if status != c.status || body["error"] != c.code || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), c.www) || (c.www == "" && hdr.Get("WWW-Authenticate") != "") {
			t.Errorf("%s: %d %v WWW-Authenticate %q", c.what, status, body, hdr.Get("WWW-Authenticate"))
		}
		if status == 403 && !strings.Contains(hdr.Get("WWW-Authenticate"), `scope="writ/audit.write"`) {
			t.Errorf("%s: WWW-Authenticate %q does not name the scope", c.what, hdr.Get("WWW-Authenticate"))
		}
	}
	lines := `{"component":"orders","action":"orders:List","outcome":"allow","request_id":"svc-req-2"}
{"component":"orders","action":"orders:Get","outcome":"error","reason":"db down","request_id":"svc-req-2","time":"` + env.Clock.Now().Add(-time.Minute).Format(time.RFC3339) + `"}
`
	req, _ = http.NewRequest("POST", ingestURL, strings.NewReader(lines))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+ordersTok)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"accepted":2}` {
		t.Errorf("JSON lines: %d %s", resp.StatusCode, b)
	}
	env.App.Ingested.Flush(ctx)
	if evs, _ := env.App.Core.Store.ListAudit(ctx, store.AuditFilter{RequestID: "svc-req-bad"}); len(evs) != 0 {
		t.Errorf("refused posts stored %d events", len(evs))
	}
	if evs, _ := env.App.Core.Store.ListAudit(ctx, store.AuditFilter{RequestID: "svc-req-2"}); len(evs) != 2 || evs[1].Reason != "db down" ||
		!evs[1].Time.Equal(env.Clock.Now().Add(-time.Minute).Truncate(time.Second)) {
		t.Errorf("valid post stored %+v", evs)
	}

	// The trail, services' stream included, verifies.
	env.App.Core.Audit.Flush(ctx)
	live := map[string]bool{env.App.Core.Audit.Stream(): true, env.App.Ingested.Stream(): true}
	rep, err := audit.Verify(ctx, env.App.Core.Store, app.AuditSigner(env.App.Core.Master), audit.VerifyOptions{Live: live})
	if err != nil || len(rep.Problems) != 0 || len(rep.Open) != 0 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// TestSDKAuditClientSendsOddEvents: events a service builds carelessly (a
// multi-line error as the reason, an overlong action, an unknown outcome, a
// bad trace id) reach the trail cleaned, and do not cost the valid events
// of their batch; a component name writ would refuse is refused at once.
func TestSDKAuditClientSendsOddEvents(t *testing.T) {
	env := apptest.Start(t, withAuditScope)
	ctx := context.Background()
	issuer := env.App.URL(app.IDP) + "/us-east-1_WritDemo1"
	creds := sdk.ClientCredentials{TokenURL: issuer + "/oauth2/token", ClientID: "orders-service", ClientSecret: "orders-demo-secret"}
	url := env.App.URL(app.Identity) + "/audit/events"
	for _, bad := range []string{"gateway", "orders service", ""} {
		if _, err := sdk.NewAuditClient(sdk.AuditConfig{URL: url, Component: bad, Credentials: creds}); err == nil {
			t.Errorf("component %q accepted", bad)
		}
	}
	trail, err := sdk.NewAuditClient(sdk.AuditConfig{URL: url, Component: "orders", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	rctx := sdk.WithRequest(ctx, "odd-1", "")
	trail.Record(rctx, sdk.AuditEvent{Action: "orders:Get", Outcome: sdk.AuditAllow})
	trail.Record(rctx, sdk.AuditEvent{Action: "orders:Put", Outcome: sdk.AuditError, Reason: "db: write failed\n\tat line 2\x00"})
	trail.Record(rctx, sdk.AuditEvent{Action: strings.Repeat("é", 200), Outcome: "maybe", TraceID: "XYZ"})
	if err := trail.Close(ctx); err != nil || trail.Dropped() != 0 {
		t.Fatalf("close: %v, dropped %d", err, trail.Dropped())
	}
	evs, err := env.App.Core.Store.ListAudit(ctx, store.AuditFilter{RequestID: "odd-1"})
	if err != nil || len(evs) != 3 {
		t.Fatalf("events of odd-1: %v, %d events", err, len(evs))
	}
	if evs[1].Reason != "db: write failed  at line 2 " {
		t.Errorf("multi-line reason stored as %q", evs[1].Reason)
	}
	if e := evs[2]; len(e.Action) > 128 || !strings.HasPrefix(e.Action, "éé") || e.Outcome != "error" ||
		!strings.Contains(e.Reason, `outcome "maybe"`) || e.TraceID != "" {
		t.Errorf("odd event stored as %+v", e)
	}
}

// TestIngestComponentsOfAClient: a client whose audit_components are set
// posts events only as those components (an event as another service is
// refused and nothing is stored); one without posts as any that writ does
// not reserve.
func TestIngestComponentsOfAClient(t *testing.T) {
	env := apptest.Start(t, withAuditScope, func(c *config.Config) {
		for i := range c.UserPools[0].Clients {
			switch c.UserPools[0].Clients[i].ClientID {
			case "orders-service":
				c.UserPools[0].Clients[i].AuditComponents = []string{"orders"}
			case "files-service":
				c.UserPools[0].Clients[i].Scopes = append(c.UserPools[0].Clients[i].Scopes, sdk.AuditScope)
			}
		}
	})
	issuer := env.App.URL(app.IDP) + "/us-east-1_WritDemo1"
	tok := clientToken(t, issuer+"/oauth2/token", "orders-service", "orders-demo-secret", sdk.AuditScope)
	post := func(component, reqID string) int {
		t.Helper()
		body := `[{"component":"` + component + `","action":"x:Do","outcome":"allow","request_id":"` + reqID + `"}]`
		req, _ := http.NewRequest("POST", env.App.URL(app.Identity)+"/audit/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("orders", "comp-own"); got != 200 {
		t.Fatalf("as its own component: %d", got)
	}
	if got := post("files", "comp-other"); got != 403 {
		t.Fatalf("as another service: %d, want 403", got)
	}
	// A client without the list may not post as a component another
	// client is given.
	files := clientToken(t, issuer+"/oauth2/token", "files-service", "files-demo-secret", sdk.AuditScope)
	tok, files = files, tok
	if got := post("orders", "comp-claimed"); got != 403 {
		t.Fatalf("files-service as orders: %d, want 403", got)
	}
	if got := post("files", "comp-unclaimed"); got != 200 {
		t.Fatalf("files-service as files: %d", got)
	}
	tok = files
	ctx := context.Background()
	if err := env.App.Ingested.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{"comp-own": 1, "comp-other": 0, "comp-claimed": 0, "comp-unclaimed": 1} {
		if evs, err := env.App.Core.Store.ListAudit(ctx, store.AuditFilter{RequestID: id}); err != nil || len(evs) != want {
			t.Errorf("events of %s: %d (%v), want %d", id, len(evs), err, want)
		}
	}
	// The configuration refuses a reserved component.
	if _, err := config.Parse([]byte("user_pools:\n  - id: us-east-1_X\n    clients:\n      - client_id: svc\n        secret: s3cret-s3cret\n        flows: [client_credentials]\n        audit_components: [gateway]\n"), "x.yaml"); err == nil ||
		!strings.Contains(err.Error(), "audit_components[0]") {
		t.Errorf("a reserved audit component: %v", err)
	}
}

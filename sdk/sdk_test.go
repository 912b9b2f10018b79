package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/store"
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

func TestVerifyRefusals(t *testing.T) {
	env := apptest.Start(t)
	iss := env.App.URL(app.IDP) + "/" + poolID
	v := sdk.NewVerifier(sdk.Config{Issuer: iss, Audiences: []string{"demo-web"}, Scopes: []string{"https://api.demo.local/orders.read"}})
	defer v.Close()
	ctx := context.Background()
	good := issue(t, env, "https://api.demo.local/orders.read")
	id1, err := v.Verify(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if id1.Username != "alice" || id1.ClientID != "demo-web" || len(id1.ActorChain) != 0 || id1.Token != good {
		t.Errorf("identity %+v", id1)
	}
	parts := strings.Split(good, ".")
	for name, c := range map[string]struct {
		tok    string
		status int
		desc   string
	}{
		"missing scope": {issue(t, env, "openid"), 403, "the token lacks a required scope"},
		"alg none":      {"eyJhbGciOiJub25lIiwia2lkIjoieCJ9." + parts[1] + ".", 401, "the token is malformed"},
		"tampered":      {parts[0] + "." + parts[1] + "x." + parts[2], 401, ""},
		"empty":         {"", 401, "no token"},
	} {
		_, err := v.Verify(ctx, c.tok)
		var e *sdk.Error
		if !errors.As(err, &e) || e.Status != c.status || (c.desc != "" && e.Description != c.desc) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want := sdk.ErrUnauthorized; c.status == 403 {
			if !errors.Is(err, sdk.ErrForbidden) || errors.Is(err, want) {
				t.Errorf("%s: kind %v", name, err)
			}
		} else if !errors.Is(err, want) {
			t.Errorf("%s: kind %v", name, err)
		}
	}
	// The middleware answers like the gateway, with the reason.
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("handler reached") }))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+issue(t, env, "openid"))
	h.ServeHTTP(rec, req)
	if rec.Code != 403 || rec.Header().Get("WWW-Authenticate") != `Bearer realm="writ", error="insufficient_scope", error_description="the token lacks a required scope", scope="https://api.demo.local/orders.read"` ||
		rec.Body.String() != `{"message":"Forbidden"}` {
		t.Errorf("403: %d %q %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	// A request without a bearer token gets a challenge without an error
	// code (RFC 6750 §3.1).
	for _, auth := range []string{"", "Basic dXNlcjpwYXNz", "Bearer "} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != `Bearer realm="writ"` {
			t.Errorf("Authorization %q: %d %q", auth, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

// TestExchanger: concurrent exchanges of one token share one request to
// the token endpoint; a refusal carries the OAuth error code; a Transport
// whose exchange fails closes the request body.
// A service whose verifier has never had the issuer's keys answers 503
// (ErrUnavailable), without a challenge: it cannot tell a good token
// from a bad one, and the caller's token is not at fault.
func TestIssuerNeverReached(t *testing.T) {
	env := apptest.Start(t)
	tok := issue(t, env, "openid")
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	v := sdk.NewVerifier(sdk.Config{Issuer: dead.URL + "/" + poolID, Audiences: []string{"demo-web"}})
	defer v.Close()
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("Verify: %v, want ErrUnavailable", err)
	}
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("handler reached") }))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	h.ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

func TestExchanger(t *testing.T) {
	env := apptest.Start(t)
	iss := env.App.URL(app.IDP) + "/" + poolID
	var posts atomic.Int64
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		posts.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	x := &sdk.Exchanger{HTTPClient: counting, Credentials: sdk.ClientCredentials{TokenURL: iss + "/oauth2/token", ClientID: "orders-service", ClientSecret: "orders-demo-secret"}}
	subject := issue(t, env, "openid")
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := x.Exchange(sdk.WithRequest(context.Background(), "rid-x", ""), subject, "files-service")
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	if posts.Load() != 1 || toks[0] == "" || toks[0] != toks[7] {
		t.Fatalf("8 concurrent exchanges made %d requests", posts.Load())
	}
	// A result is reused for sdk.DefaultMaxCache at most (the token lives
	// an hour), so that a revoked subject token is refused soon.
	start := time.Now()
	now := start
	x.Now = func() time.Time { return now }
	fresh := issue(t, env, "openid")
	for _, after := range []time.Duration{0, sdk.DefaultMaxCache - time.Second, sdk.DefaultMaxCache + time.Second} {
		now = start.Add(after) // since the first exchange
		if _, err := x.Exchange(context.Background(), fresh, "files-service"); err != nil {
			t.Fatal(err)
		}
	}
	if got := posts.Load(); got != 3 {
		t.Fatalf("an hour's token exchanged again after %v: %d requests in all, want 3", sdk.DefaultMaxCache, got)
	}
	_, err := x.Exchange(context.Background(), subject, "somebody-else")
	var ee *sdk.ExchangeError
	if !errors.As(err, &ee) || ee.Status != 400 || ee.Code == "" {
		t.Fatalf("exchange for an audience the client may not target: %v", err)
	}
	body := &closeCounter{Reader: strings.NewReader("payload")}
	tr := &sdk.Transport{Audience: "somebody-else", Exchange: &x.Credentials}
	req, _ := http.NewRequestWithContext(sdk.NewContext(context.Background(), &sdk.Identity{Token: subject}), "POST", "http://127.0.0.1:1/", body)
	if _, err := tr.RoundTrip(req); err == nil || !body.closed {
		t.Fatalf("failed exchange: err %v, body closed %v", err, body.closed)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closeCounter struct {
	io.Reader
	closed bool
}

func (c *closeCounter) Close() error { c.closed = true; return nil }

// TestExchangeCarriesTheTrace: an exchange made for a request (WithRequest,
// as the gateway and Middleware make them) carries its request id and
// trace, so the identity server's audit event joins the request's.
func TestExchangeCarriesTheTrace(t *testing.T) {
	env := apptest.Start(t)
	iss := env.App.URL(app.IDP) + "/" + poolID
	x := &sdk.Exchanger{Credentials: sdk.ClientCredentials{TokenURL: iss + "/oauth2/token", ClientID: "orders-service", ClientSecret: "orders-demo-secret"}}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx := sdk.WithRequest(context.Background(), "rid-traced", "00-"+traceID+"-00f067aa0ba902b7-01")
	if _, err := x.Exchange(ctx, issue(t, env, "openid"), "files-service"); err != nil {
		t.Fatal(err)
	}
	if err := env.App.Core.Audit.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, err := env.App.Core.Store.ListAudit(context.Background(), store.AuditFilter{RequestID: "rid-traced"})
	if err != nil || len(evs) != 1 || evs[0].TraceID != traceID {
		t.Fatalf("the exchange's audit events: %+v, %v", evs, err)
	}
}

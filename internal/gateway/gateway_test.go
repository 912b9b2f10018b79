package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/gateway"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/internal/userpool"
)

const poolID = "us-east-1_WritDemo1"

// upstream records what reached it.
type upstream struct {
	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last *http.Request
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Upstream", "yes")
		w.Header().Set("X-Request-Id", "upstream-chosen")
		w.Write([]byte("upstream says hi"))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) lastRequest() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

type fx struct {
	*apptest.Env
	t    testing.TB
	gw   string
	up   *upstream
	pool *userpool.Pool
}

func start(t *testing.T) *fx {
	up := newUpstream(t)
	f := startWithUpstream(t, up.srv.URL)
	f.up = up
	return f
}

// startWithUpstream runs writ with every upstream route pointing at u (and
// without the reference configuration's function, which is not built here).
func startWithUpstream(t testing.TB, u string) *fx {
	env := apptest.Start(t, func(c *config.Config) {
		routes := c.Gateway.Routes[:0]
		for _, r := range c.Gateway.Routes {
			if r.Upstream != "" {
				r.Upstream = u
				routes = append(routes, r)
			}
		}
		c.Gateway.Routes, c.Gateway.Functions = routes, nil
	})
	p, _ := env.App.Pools.Pool(poolID)
	return &fx{Env: env, t: t, gw: env.App.URL(app.Gateway), pool: p}
}

// issue mints real tokens through the pool for a client and user.
func (f *fx) issue(clientID, username string, scope ...string) userpool.Tokens {
	f.t.Helper()
	ctx := context.Background()
	c, err := f.App.Core.Store.GetClient(ctx, clientID)
	if err != nil {
		f.t.Fatal(err)
	}
	u, err := f.App.Core.Store.GetUser(ctx, poolID, username)
	if err != nil {
		f.t.Fatal(err)
	}
	tok, err := f.pool.Issue(ctx, userpool.Grant{Client: c, User: u, Scope: scope, IDToken: true, AuthTime: f.Clock.Now(), AMR: []string{"pwd"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fx) do(method, path, auth string, hdr map[string]string) *http.Response {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.gw+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func claimsOf(t *testing.T, tok string) map[string]any {
	parts := strings.Split(strings.TrimPrefix(tok, "Bearer "), ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func TestForwardWithScope(t *testing.T) {
	f := start(t)
	tok := f.issue("demo-web", "alice", "openid", "https://api.demo.local/orders.read")
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	resp := f.do("GET", "/orders/42?x=1", "Bearer "+tok.AccessToken, map[string]string{"traceparent": tp})
	if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "yes" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := f.up.lastRequest()
	if r.Header.Get("Authorization") != "Bearer "+tok.AccessToken || r.URL.Path != "/orders/42" || r.URL.RawQuery != "x=1" {
		t.Errorf("upstream saw %s %q", r.URL, r.Header.Get("Authorization"))
	}
	if r.Header.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") || !strings.HasPrefix(r.Header.Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-") ||
		r.Header.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("upstream headers: %v", r.Header)
	}
	// A client's request id is kept, and it names the response (not one
	// the upstream chose).
	resp = f.do("GET", "/orders/1", "Bearer "+tok.AccessToken, map[string]string{"X-Request-Id": "req-abc"})
	if got, ids := f.up.lastRequest().Header.Get("X-Request-Id"), resp.Header.Values("X-Request-Id"); got != "req-abc" || len(ids) != 1 || ids[0] != "req-abc" {
		t.Errorf("request id %q upstream, %q in the response", got, ids)
	}
	// The raw token without the Bearer prefix is accepted too, as API Gateway does.
	if resp := f.do("GET", "/orders/1", tok.AccessToken, nil); resp.StatusCode != 200 {
		t.Errorf("raw token: %d", resp.StatusCode)
	}
	// The upstream gets the token the gateway verified, even when the
	// caller names Authorization as a hop-by-hop header.
	resp = f.do("GET", "/orders/1", "Bearer "+tok.AccessToken, map[string]string{"Connection": "Authorization"})
	if got := f.up.lastRequest().Header.Get("Authorization"); resp.StatusCode != 200 || got != "Bearer "+tok.AccessToken {
		t.Errorf("with Connection: Authorization: %d, upstream saw %q", resp.StatusCode, got)
	}
}

func TestMissingScopeIs403(t *testing.T) {
	f := start(t)
	tok := f.issue("demo-web", "alice", "openid")
	resp := f.do("GET", "/orders/42", "Bearer "+tok.AccessToken, nil)
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) || f.up.hits.Load() != 0 {
		t.Fatalf("%d %q hits %d", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), f.up.hits.Load())
	}
}

func TestRoutingErrors(t *testing.T) {
	f := start(t)
	if resp := f.do("GET", "/nope", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	if resp := f.do("GET", "/orders/1/extra", "", nil); resp.StatusCode != 404 {
		t.Errorf("extra segment: %d", resp.StatusCode)
	}
	if f.up.hits.Load() != 0 {
		t.Error("routing errors reached the upstream")
	}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestAttackTokensNeverReachTheUpstream(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	good := f.issue("demo-web", "alice", "https://api.demo.local/orders.read")
	gc := claimsOf(t, good.AccessToken)
	key, _ := f.App.Core.Keys.Signer(ctx, poolID)
	mint := func(mod map[string]any) string {
		m := map[string]any{}
		for k, v := range gc {
			m[k] = v
		}
		for k, v := range mod {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		tok, err := token.Mint(key, m)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	parts := strings.Split(good.AccessToken, ".")
	pubDER, _ := x509.MarshalPKIXPublicKey(key.Public().Key)
	hsHeader := b64(map[string]any{"alg": "HS256", "kid": key.KID, "typ": "JWT"}) + "." + parts[1]
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsHeader))
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	os, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: key.KID}}, nil)
	otherPool, _ := os.Sign([]byte(`{"iss":"` + gc["iss"].(string) + `","sub":"x","token_use":"access","client_id":"demo-web","scope":"https://api.demo.local/orders.read","exp":` + jsonNum(time.Now().Add(time.Hour).Unix()) + `}`))
	otherPoolTok, _ := otherPool.CompactSerialize()
	// A real key of another pool (the issuer publishes it under that pool only).
	if err := f.App.Core.Keys.Ensure(ctx, "us-east-1_Other", "ES256"); err != nil {
		t.Fatal(err)
	}
	otherKey, err := f.App.Core.Keys.Signer(ctx, "us-east-1_Other")
	if err != nil {
		t.Fatal(err)
	}
	anotherPool, err := token.Mint(otherKey, gc)
	if err != nil {
		t.Fatal(err)
	}
	svc := f.issue("orders-service", "alice", "https://api.demo.local/orders.read") // aud orders-service
	now := f.Clock.Now()
	attacks := map[string]string{
		"alg none":              b64(map[string]any{"alg": "none", "kid": key.KID}) + "." + parts[1] + ".",
		"HS256 with public key": hsHeader + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
		"unknown kid":           b64(map[string]any{"alg": "ES256", "kid": "nope"}) + "." + parts[1] + "." + parts[2],
		"expired":               mint(map[string]any{"exp": now.Add(-time.Hour).Unix()}),
		"not yet valid":         mint(map[string]any{"nbf": now.Add(time.Hour).Unix()}),
		"wrong issuer":          mint(map[string]any{"iss": "http://127.0.0.1:1/us-east-1_Other"}),
		"wrong audience":        svc.AccessToken,
		"ID token for access":   good.IDToken,
		"another key, same kid": otherPoolTok,
		"another pool's key":    anotherPool,
		"truncated":             good.AccessToken[:len(good.AccessToken)-12],
		"jku elsewhere":         b64(map[string]any{"alg": "ES256", "kid": "evil", "jku": "http://127.0.0.1:1/jwks.json"}) + "." + parts[1] + "." + parts[2],
		"x5u elsewhere":         b64(map[string]any{"alg": "ES256", "kid": "evil", "x5u": "http://127.0.0.1:1/cert.pem"}) + "." + parts[1] + "." + parts[2],
		"no token":              "",
		"garbage":               "abc.def.ghi",
	}
	for name, tok := range attacks {
		t.Run(name, func(t *testing.T) {
			auth := ""
			if tok != "" {
				auth = "Bearer " + tok
			}
			resp := f.do("GET", "/orders/1", auth, nil)
			want := `error="invalid_token"`
			if tok == "" {
				want = `Bearer realm="writ"` // no credentials: no error code (RFC 6750 §3.1)
			}
			if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), want) {
				t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// A 100 KB token is refused before it is even parsed: the header block
	// is too large (431).
	resp := f.do("GET", "/orders/1", "Bearer "+strings.Repeat("a", 100<<10), nil)
	if resp.StatusCode != 431 {
		t.Errorf("100 KB token: %d", resp.StatusCode)
	}
	if n := f.up.hits.Load(); n != 0 {
		t.Fatalf("%d attack requests reached the upstream", n)
	}
	// And the good token still works.
	if resp := f.do("GET", "/orders/1", "Bearer "+good.AccessToken, nil); resp.StatusCode != 200 {
		t.Fatalf("good token: %d", resp.StatusCode)
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestExchangePropagation(t *testing.T) {
	f := start(t)
	tok := f.issue("demo-web", "alice", "openid", "https://api.demo.local/orders.read")
	resp := f.do("PUT", "/files/a/b.txt", "Bearer "+tok.AccessToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := f.up.lastRequest().Header.Get("Authorization")
	c := claimsOf(t, got)
	act, _ := json.Marshal(c["act"])
	if got == "Bearer "+tok.AccessToken || c["aud"] != "files-service" || c["sub"] != claimsOf(t, tok.AccessToken)["sub"] || string(act) != `{"client_id":"api-gateway","sub":"api-gateway"}` {
		t.Fatalf("upstream got %v (act %s)", c, act)
	}
	if f.up.lastRequest().URL.Path != "/files/a/b.txt" {
		t.Errorf("path %q", f.up.lastRequest().URL.Path)
	}
	// The exchanged token is cached: a second request carries the same one.
	f.do("GET", "/files/x", "Bearer "+tok.AccessToken, nil)
	if f.up.lastRequest().Header.Get("Authorization") != got {
		t.Error("exchanged token not reused")
	}
}

func TestKeyRotationUnderLoad(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	var refused atomic.Int64
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok := f.issue("demo-web", "alice", "https://api.demo.local/orders.read")
				req, _ := http.NewRequest("GET", f.gw+"/orders/1", nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					refused.Add(1)
					continue
				}
				resp.Body.Close()
				sent.Add(1)
				if resp.StatusCode != 200 {
					refused.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	rotated, err := f.App.Core.Keys.Rotate(ctx, poolID, "ES256", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	f.Clock.Advance(11 * time.Minute) // the new key starts signing
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if k, _ := f.App.Core.Keys.Signer(ctx, poolID); k.KID != rotated.KID {
		t.Fatal("the rotated key never started signing")
	}
	if refused.Load() != 0 || sent.Load() < 20 {
		t.Fatalf("%d of %d valid requests refused during rotation", refused.Load(), sent.Load())
	}
}

// TestDecisionsAreAudited: each allow and deny is an audit event under the
// request's id, with the caller and, for denials, the public reason.
func TestDecisionsAreAudited(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	tok := f.issue("demo-web", "alice", "openid")
	f.do("GET", "/orders/1", "Bearer "+tok.AccessToken, map[string]string{"X-Request-Id": "audit-403"})
	f.do("GET", "/orders/1", "Bearer garbage", map[string]string{"X-Request-Id": "audit-401"})
	f.do("PUT", "/files/x", "Bearer "+tok.AccessToken, map[string]string{"X-Request-Id": "audit-200"})
	f.App.Core.Audit.Flush(ctx)
	for id, want := range map[string]string{
		"audit-403": "deny GET /orders/{id} alice the token lacks a required scope",
		"audit-401": "deny GET /orders/{id}  the token is malformed",
		"audit-200": "allow ANY /files/{proxy+} alice ",
	} {
		evs, err := f.App.Core.Store.ListAudit(ctx, store.AuditFilter{RequestID: id})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			if e.Component == "gateway" {
				got = append(got, e.Outcome+" "+e.Action+" "+e.Username+" "+e.Reason)
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: gateway events %q, want %q", id, got, want)
		}
	}
}

// TestVerifiedTokenCacheNeverOutlivesExp: a token verified (and cached)
// while valid is refused once it has expired, cache or not.
func TestVerifiedTokenCacheNeverOutlivesExp(t *testing.T) {
	f := start(t)
	gw, err := gateway.New(f.Cfg, gateway.Options{IDPURL: f.App.URL(app.IDP), Now: f.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	tok := f.issue("demo-web", "alice", "https://api.demo.local/orders.read")
	req := func() int {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/orders/1", nil)
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		gw.ServeHTTP(rec, r)
		return rec.Code
	}
	if code := req(); code != 200 || gw.CachedTokens() != 1 {
		t.Fatalf("first request %d, cached %d", code, gw.CachedTokens())
	}
	exp := int64(claimsOf(t, tok.AccessToken)["exp"].(float64))
	f.Clock.Advance(time.Unix(exp, 0).Sub(f.Clock.Now()) - time.Second)
	if code := req(); code != 200 {
		t.Fatalf("a second before exp: %d", code)
	}
	f.Clock.Advance(f.Cfg.Gateway.Authorizers[0].Skew + time.Second)
	if code := req(); code != 401 {
		t.Fatalf("past exp and skew: %d", code)
	}
	if n := f.up.hits.Load(); n != 2 {
		t.Fatalf("upstream hits %d, want 2", n)
	}
}

package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/gateway"
)

const orderScope = "https://api.demo.local/orders.read"

// startRoutes runs writ with extra routes (their upstream set to up).
func startRoutes(t *testing.T, up string, extra ...config.Route) *fx {
	env := apptest.Start(t, func(c *config.Config) {
		for i := range c.Gateway.Routes {
			if c.Gateway.Routes[i].Upstream != "" {
				c.Gateway.Routes[i].Upstream = up
			}
		}
		for _, r := range extra {
			r.Upstream = up
			if r.Propagate == "" {
				r.Propagate = "forward"
			}
			c.Gateway.Routes = append(c.Gateway.Routes, r)
		}
	})
	f := &fx{Env: env, t: t, gw: env.App.URL(app.Gateway)}
	f.pool, _ = env.App.Pools.Pool(poolID)
	return f
}

func TestHeaderBlockTooLargeIs431(t *testing.T) {
	f := start(t)
	tok := f.issue("demo-web", "alice", orderScope)
	resp := f.do("GET", "/orders/1", "Bearer "+tok.AccessToken, map[string]string{"X-Padding": strings.Repeat("a", 100<<10)})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KB of headers with a valid token: %d", resp.StatusCode)
	}
	if n := f.up.hits.Load(); n != 0 {
		t.Fatalf("%d oversized requests reached the upstream", n)
	}
}

func TestRateLimitPerSubject(t *testing.T) {
	up := newUpstream(t)
	f := startRoutes(t, up.srv.URL, config.Route{Route: "GET /limited/{id}", Authorizer: "demo", RateLimit: 2})
	alice := "Bearer " + f.issue("demo-web", "alice").AccessToken
	bob := "Bearer " + f.issue("demo-web", "bob").AccessToken
	var codes []int
	for i := 0; i < 3; i++ {
		codes = append(codes, f.do("GET", "/limited/1", alice, nil).StatusCode)
	}
	resp := f.do("GET", "/limited/1", alice, nil)
	if fmt.Sprint(codes) != "[200 200 429]" || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("alice at 2/s: %v then %d (Retry-After %q)", codes, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := f.do("GET", "/limited/1", bob, nil); resp.StatusCode != 200 {
		t.Fatalf("bob is limited by alice's requests: %d", resp.StatusCode)
	}
	if n := up.hits.Load(); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3 (refused ones never reach it)", n)
	}
	f.Clock.Advance(600 * time.Millisecond) // 1.2 requests' worth
	if resp := f.do("GET", "/limited/1", alice, nil); resp.StatusCode != 200 {
		t.Fatalf("after refill: %d", resp.StatusCode)
	}
	if resp := f.do("GET", "/limited/1", alice, nil); resp.StatusCode != 429 {
		t.Fatalf("refill beyond the rate: %d", resp.StatusCode)
	}
}

// Refused tokens count against their source address: past the route's
// rate, they get 429, while good tokens from the same address (a NAT, a
// load balancer) are limited by their own subject only.
func TestRateLimitOfRefusedTokens(t *testing.T) {
	up := newUpstream(t)
	f := startRoutes(t, up.srv.URL, config.Route{Route: "GET /limited/{id}", Authorizer: "demo", RateLimit: 2})
	alice := "Bearer " + f.issue("demo-web", "alice").AccessToken
	var codes []int
	for _, auth := range []string{"forged", "forged", "forged", "forged", alice, alice, alice} {
		if auth == "forged" {
			auth = "Bearer forged.token.here"
		}
		codes = append(codes, f.do("GET", "/limited/1", auth, nil).StatusCode)
	}
	if fmt.Sprint(codes) != "[401 401 429 429 200 200 429]" || up.hits.Load() != 2 {
		t.Fatalf("bad tokens, then good ones, from one address at 2/s: %v, %d upstream calls", codes, up.hits.Load())
	}
	// A token of the issuer that has expired is not counted, nor refused
	// for the address's flood: its holder is told to refresh it (401
	// invalid_token), not to wait.
	bob := "Bearer " + f.issue("demo-web", "bob").AccessToken
	f.Clock.Advance(2 * time.Hour)
	codes = nil
	for _, auth := range []string{bob, bob, bob, "Bearer forged.token.here", "Bearer forged.token.here", "Bearer forged.token.here", bob} {
		codes = append(codes, f.do("GET", "/limited/1", auth, nil).StatusCode)
	}
	resp := f.do("GET", "/limited/1", bob, nil)
	if fmt.Sprint(codes) != "[401 401 401 401 401 429 401]" || resp.StatusCode != 401 ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("an expired token, among bad ones from its address: %v, then %d %q", codes, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestMaxBody(t *testing.T) {
	up := newUpstream(t)
	f := startRoutes(t, up.srv.URL, config.Route{Route: "POST /upload", Authorizer: "demo", MaxBody: 1000})
	tok := "Bearer " + f.issue("demo-web", "alice").AccessToken
	post := func(f *fx, body io.Reader, length int64) int {
		req, _ := http.NewRequest("POST", f.gw+"/upload", body)
		req.ContentLength = length
		req.Header.Set("Authorization", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(f, strings.NewReader(strings.Repeat("x", 1000)), 1000); code != 200 {
		t.Fatalf("1000 bytes: %d", code)
	}
	if code := post(f, strings.NewReader(strings.Repeat("x", 1001)), 1001); code != 413 {
		t.Fatalf("1001 bytes declared: %d", code)
	}
	if up.hits.Load() != 1 {
		t.Fatalf("upstream hits %d, want 1", up.hits.Load())
	}
	// A chunked body is cut at the limit: the upstream never gets more.
	var got atomic.Int64
	up2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
	}))
	defer up2.Close()
	f2 := startRoutes(t, up2.URL, config.Route{Route: "POST /upload", Authorizer: "demo", MaxBody: 1000})
	tok = "Bearer " + f2.issue("demo-web", "alice").AccessToken
	post(f2, io.MultiReader(strings.NewReader(strings.Repeat("x", 5000))), -1) // MultiReader hides the length: chunked
	if got.Load() > 1000 {
		t.Fatalf("upstream read %d bytes of a chunked body over the 1000-byte limit", got.Load())
	}
}

func TestCORS(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "https://evil.example") // overridden by the gateway
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	f := startRoutes(t, up.URL, config.Route{Route: "ANY /api/{proxy+}", Authorizer: "demo",
		CORS: &config.CORS{AllowOrigins: []string{"https://app.example"}, MaxAge: 10 * time.Minute}})
	tok := "Bearer " + f.issue("demo-web", "alice").AccessToken

	// The preflight needs no token.
	resp := f.do("OPTIONS", "/api/x", "", map[string]string{"Origin": "https://app.example",
		"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"})
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Methods") != "PUT" ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") || h.Get("Access-Control-Max-Age") != "600" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	resp = f.do("OPTIONS", "/api/x", "", map[string]string{"Origin": "https://other.example", "Access-Control-Request-Method": "PUT"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
	}
	// Real requests carry the gateway's CORS headers, refusals included.
	resp = f.do("GET", "/api/x", tok, map[string]string{"Origin": "https://app.example"})
	if resp.StatusCode != 200 || fmt.Sprint(resp.Header["Access-Control-Allow-Origin"]) != "[https://app.example]" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After") { // a script reads a 429's wait
		t.Fatalf("request: %d %v", resp.StatusCode, resp.Header)
	}
	resp = f.do("GET", "/api/x", "", map[string]string{"Origin": "https://app.example"})
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("refusal: %d %v", resp.StatusCode, resp.Header)
	}
	resp = f.do("GET", "/api/x", tok, map[string]string{"Origin": "https://other.example"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin got %v", resp.Header)
	}
	// Without CORS on the route, OPTIONS is an ordinary request: 405 here.
	resp = f.do("OPTIONS", "/orders/1", "", map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
	if resp.StatusCode != 405 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("OPTIONS on a route without CORS: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestStreamingAndHeaders checks what an upstream receives and that the
// response streams: the first chunk reaches the client before the upstream
// has finished.
func TestStreamingAndHeaders(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var seen http.Header
	var seenHost string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen, seenHost = r.Header.Clone(), r.Host
		mu.Unlock()
		if r.URL.Path == "/base/stream" {
			w.Write([]byte("first\n"))
			w.(http.Flusher).Flush()
			<-release
			w.Write([]byte("second\n"))
			return
		}
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "should not reach the client")
		fmt.Fprintf(w, "%s?%s", r.URL.Path, r.URL.RawQuery)
	}))
	defer up.Close()
	f := startRoutes(t, up.URL+"/base", config.Route{Route: "GET /stream", Authorizer: "demo"})
	tok := "Bearer " + f.issue("demo-web", "alice", orderScope).AccessToken

	req, _ := http.NewRequest("GET", f.gw+"/stream", nil)
	req.Header.Set("Authorization", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	close(release)
	resp.Body.Close()
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk: %q %v", line, err)
	}

	// Hop-by-hop headers (named in Connection too) go neither way; an
	// invalid traceparent starts a new trace; X-Forwarded-* are set.
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /orders/7?a=1&b=%%2F HTTP/1.1\r\nHost: api.example\r\nAuthorization: %s\r\nConnection: keep-alive, X-Secret\r\n"+
		"X-Secret: hop\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\ntraceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01\r\n\r\n", tok)
	r2, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, h := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization"} {
		if seen.Get(h) != "" {
			t.Errorf("upstream got hop-by-hop %s: %q", h, seen.Get(h))
		}
	}
	if r2.Header.Get("X-Hop") != "" {
		t.Errorf("client got the upstream's hop-by-hop X-Hop: %v", r2.Header)
	}
	tp := seen.Get("Traceparent")
	if len(tp) != 55 || strings.HasPrefix(tp, "00-00000000000000000000000000000000") {
		t.Errorf("traceparent %q", tp)
	}
	if seen.Get("X-Forwarded-Host") != "api.example" || seen.Get("X-Forwarded-Proto") != "http" || seen.Get("X-Forwarded-For") != "127.0.0.1" ||
		seenHost != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("forwarded headers %v, Host %q", seen, seenHost)
	}
	// An upstream URL with a path is joined with the request path; the
	// query is passed unchanged.
	if string(body) != "/base/orders/7?a=1&b=%2F" {
		t.Errorf("upstream saw %q", body)
	}
}

// TestUpstreamTimeouts: a route's timeout bounds the wait for the
// upstream's response headers (504), not a response that streams longer.
func TestUpstreamTimeouts(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			w.Write([]byte("start "))
			w.(http.Flusher).Flush()
			time.Sleep(600 * time.Millisecond)
			w.Write([]byte("end"))
			return
		}
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	env := apptest.Start(t, func(c *config.Config) {
		c.Gateway.Routes = append(c.Gateway.Routes,
			config.Route{Route: "GET /slow", Upstream: slow.URL, Timeout: 200 * time.Millisecond, Propagate: "forward"},
			config.Route{Route: "GET /long", Upstream: slow.URL, Timeout: 200 * time.Millisecond, Propagate: "forward"},
			config.Route{Route: "GET /dead", Upstream: deadURL, Propagate: "forward"})
	})
	f := &fx{Env: env, t: t, gw: env.App.URL(app.Gateway)}
	start := time.Now()
	if resp := f.do("GET", "/slow", "", nil); resp.StatusCode != 504 || time.Since(start) > 3*time.Second {
		t.Errorf("slow upstream: %d after %v", resp.StatusCode, time.Since(start))
	}
	if resp := f.do("GET", "/dead", "", nil); resp.StatusCode != 502 {
		t.Errorf("unreachable upstream: %d", resp.StatusCode)
	}
	resp, err := http.Get(f.gw + "/long")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "start end" || err != nil {
		t.Errorf("a response streaming past the timeout: %d %q %v", resp.StatusCode, body, err)
	}
}

func TestBadRouteConfigIsRefused(t *testing.T) {
	env := apptest.Start(t)
	for name, mutate := range map[string]func(*config.Config){
		"conflict": func(c *config.Config) {
			c.Gateway.Routes = append(c.Gateway.Routes, config.Route{Route: "GET /orders/{order}", Upstream: "http://127.0.0.1:1"})
		},
		"exchange without authorizer": func(c *config.Config) {
			c.Gateway.Routes = append(c.Gateway.Routes, config.Route{Route: "GET /x", Upstream: "http://127.0.0.1:1", Propagate: "exchange", Audience: "files-service"})
		},
		"bad CORS origin": func(c *config.Config) {
			c.Gateway.Routes[0].CORS = &config.CORS{AllowOrigins: []string{"app.example/path"}}
		},
		"negative rate": func(c *config.Config) { c.Gateway.Routes[0].RateLimit = -1 },
	} {
		cfg := apptest.Reference(t, t.TempDir())
		mutate(cfg)
		if gw, err := gateway.New(cfg, gateway.Options{IDPURL: env.App.URL(app.IDP)}); err == nil {
			gw.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestExchangeSharedAndRefreshed: concurrent requests with one token share
// one exchange, later requests reuse its result, and it is replaced
// shortly before it expires.
func TestExchangeSharedAndRefreshed(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{} // exchanged token → requests that carried it
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("Authorization")]++
		mu.Unlock()
	}))
	defer up.Close()
	f := startWithUpstream(t, up.URL)
	tok := "Bearer " + f.issue("demo-web", "alice").AccessToken
	call := func() {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", f.gw+"/files/a", nil)
		req.Header.Set("Authorization", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); call() }()
	}
	wg.Wait()
	call()
	mu.Lock()
	if len(got) != 1 {
		t.Fatalf("9 requests made %d exchanges, want 1", len(got))
	}
	var first string
	for k := range got {
		first = k
	}
	exp := int64(claimsOf(t, first)["exp"].(float64))
	mu.Unlock()
	// Within the last tenth of its life (at most a minute) it is exchanged again.
	f.Clock.Advance(time.Unix(exp, 0).Sub(f.Clock.Now()) - 50*time.Second)
	call()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[first] != 9 {
		t.Fatalf("near expiry: %d distinct tokens, the first carried %d times", len(got), got[first])
	}
}

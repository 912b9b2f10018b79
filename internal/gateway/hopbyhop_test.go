package gateway_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
)

// hopUpstream answers as an upstream that names hop-by-hop headers in its
// responses' Connection header, and records the request it got.
type hopUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen http.Header
}

func newHopUpstream(t *testing.T) *hopUpstream {
	u := &hopUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = r.Header.Clone()
		u.mu.Unlock()
		h := w.Header()
		switch {
		case strings.HasSuffix(r.URL.Path, "/hints"):
			// An informational response first (103 Early Hints, which
			// the gateway passes on), with hop-by-hop headers of its own.
			h.Set("Link", "</style.css>; rel=preload")
			h.Set("Connection", "X-Hint")
			h.Set("X-Hint", "secret")
			h.Set("Keep-Alive", "timeout=5")
			w.WriteHeader(http.StatusEarlyHints)
			for _, k := range []string{"Link", "Connection", "X-Hint", "Keep-Alive"} {
				h.Del(k)
			}
			h.Set("Connection", "X-Foo")
			h.Set("X-Foo", "secret")
			io.WriteString(w, "after hints")
		default:
			h.Set("Connection", "X-Foo")
			h.Set("X-Foo", "secret")
			h.Set("X-Kept", "yes")
			h.Set("Keep-Alive", "timeout=5")
			h.Set("Proxy-Connection", "keep-alive")
			h.Set("Proxy-Authenticate", `Basic realm="upstream"`)
			h.Set("Upgrade", "h2c")
			h.Set("Te", "trailers")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "upstream body")
		}
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *hopUpstream) lastHeader() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen
}

// getBody requests path through the gateway and returns the response with
// its body read.
func (f *fx) getBody(path, auth string, hdr map[string]string) (*http.Response, string) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.gw+path, nil)
	req.Header.Set("Authorization", auth)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, string(b)
}

// rawConn sends one request exactly as written and returns the connection,
// to read the response as the gateway wrote it (an informational one
// included).
func (f *fx) rawConn(request string) net.Conn {
	f.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.gw, "http://"))
	if err != nil {
		f.t.Fatal(err)
	}
	io.WriteString(conn, request)
	return conn
}

// checkUpstreamResponse gets path (a "Connection: X-Foo" response
// of the upstream's) through the gateway at f.gw: the client gets neither
// X-Foo nor the hop-by-hop headers that need not be named, and the
// status, body and other headers unchanged.
func (f *fx) checkUpstreamResponse(path, auth string) {
	f.t.Helper()
	resp, body := f.getBody(path, auth, nil)
	if resp.StatusCode != http.StatusCreated || body != "upstream body" || resp.Header.Get("X-Kept") != "yes" {
		f.t.Fatalf("%s: %d %q %v", path, resp.StatusCode, body, resp.Header)
	}
	for _, h := range []string{"X-Foo", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade", "Te"} {
		if v := resp.Header.Values(h); len(v) > 0 {
			f.t.Errorf("%s: client got the upstream's hop-by-hop %s: %q", path, h, v)
		}
	}
}

// An upstream's response that says "Connection: X-Foo" keeps X-Foo to the
// gateway's hop (RFC 9110 §7.6.1), and so do the standard hop-by-hop
// headers. (Not with "close" among the names: see upstreamTransport.)
func TestUpstreamHopByHopHeaders(t *testing.T) {
	up := newHopUpstream(t)
	f := startWithUpstream(t, up.srv.URL)
	tok := "Bearer " + f.issue("demo-web", "alice", orderScope).AccessToken
	f.checkUpstreamResponse("/orders/1", tok)

	// The other way: the caller's Connection-named headers do not reach the
	// upstream, which still gets the token the gateway verified.
	f.getBody("/orders/1", tok, map[string]string{"Connection": "close, X-Secret, Authorization", "X-Secret": "hop"})
	seen := up.lastHeader()
	if seen.Get("X-Secret") != "" || seen.Get("Authorization") != tok {
		t.Errorf("upstream got X-Secret %q, Authorization %q", seen.Get("X-Secret"), seen.Get("Authorization"))
	}
}

// A 103 Early Hints response passes through the gateway without its
// hop-by-hop headers, and so does the response that follows it.
func TestUpstreamHopByHopHeadersOfEarlyHints(t *testing.T) {
	up := newHopUpstream(t)
	f := startWithUpstream(t, up.srv.URL)
	tok := "Bearer " + f.issue("demo-web", "alice", orderScope).AccessToken

	conn := f.rawConn("GET /orders/hints HTTP/1.1\r\nHost: x\r\nAuthorization: " + tok + "\r\nConnection: close\r\n\r\n")
	defer conn.Close()
	head, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	hints, final, ok := strings.Cut(string(head), "\r\n\r\n")
	if !ok || !strings.HasPrefix(hints, "HTTP/1.1 103 ") || !strings.Contains(hints, "\r\nLink: </style.css>; rel=preload") {
		t.Fatalf("no early hints: %q", head)
	}
	for _, h := range []string{"\r\nX-Hint:", "\r\nKeep-Alive:", "\r\nConnection:"} {
		if strings.Contains(hints, h) {
			t.Errorf("the 103 carries the upstream's hop-by-hop %s %q", h[2:], hints)
		}
	}
	r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(final)), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || string(b) != "after hints" || r.Header.Get("X-Foo") != "" {
		t.Errorf("after the hints: %d %q %v", r.StatusCode, b, r.Header)
	}
}

// A function's response headers are an HTTP response's only as the
// gateway writes them: the hop-by-hop ones, and those its Connection
// header names, do not reach the client (nor close its connection).
func TestFunctionHopByHopHeaders(t *testing.T) {
	bin := buildFn(t)
	env := apptest.Start(t, func(c *config.Config) {
		c.Gateway.Functions = []config.Function{{Name: "fn", Command: []string{bin}, Timeout: 2 * time.Second, Concurrency: 1}}
		c.Gateway.Routes = append(c.Gateway.Routes, config.Route{Route: "GET /fn/{proxy+}", Authorizer: "demo", Function: "fn"})
		c.Gateway.Routes[2].Function = "fn" // GET /whoami: the reference configuration's function
	})
	f := &fx{Env: env, t: t, gw: env.App.URL(app.Gateway)}
	f.pool, _ = env.App.Pools.Pool(poolID)
	tok := "Bearer " + f.issue("demo-web", "alice").AccessToken

	conn := f.rawConn("GET /fn/hop HTTP/1.1\r\nHost: x\r\nAuthorization: " + tok + "\r\n\r\n" +
		"GET /fn/hop HTTP/1.1\r\nHost: x\r\nAuthorization: " + tok + "\r\nConnection: close\r\n\r\n")
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := 0; i < 2; i++ { // two on one connection
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusAccepted || string(body) != "fn body" || resp.Header.Get("X-Kept") != "yes" {
			t.Fatalf("response %d: %d %q %v %v", i+1, resp.StatusCode, body, err, resp.Header)
		}
		if i == 0 && resp.Close {
			t.Errorf("the function's Connection: close reached the client") // which would drop a connection kept alive
		}
		for _, h := range []string{"X-Foo", "X-Bar", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade", "Te", "Trailer"} {
			if v := resp.Header.Values(h); len(v) > 0 {
				t.Errorf("client got the function's hop-by-hop %s: %q", h, v)
			}
		}
		if len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] != "chunked" || len(resp.Trailer) > 0 {
			t.Errorf("the function's framing reached the client: %q %v", resp.TransferEncoding, resp.Trailer)
		}
	}
}

// A function's event carries none of the client's hop-by-hop request
// headers (a proxy's credentials included), but the Authorization the
// gateway verified, even named in Connection.
func TestFunctionEventWithoutHopByHopHeaders(t *testing.T) {
	bin := buildFn(t)
	env := apptest.Start(t, func(c *config.Config) {
		c.Gateway.Functions = []config.Function{{Name: "fn", Command: []string{bin}, Timeout: 2 * time.Second, Concurrency: 1}}
		c.Gateway.Routes = append(c.Gateway.Routes, config.Route{Route: "GET /fn/{proxy+}", Authorizer: "demo", Function: "fn"})
		c.Gateway.Routes[2].Function = "fn"
	})
	f := &fx{Env: env, t: t, gw: env.App.URL(app.Gateway)}
	f.pool, _ = env.App.Pools.Pool(poolID)
	tok := "Bearer " + f.issue("demo-web", "alice").AccessToken
	conn := f.rawConn("GET /fn/echo HTTP/1.1\r\nHost: x\r\nAuthorization: " + tok +
		"\r\nConnection: X-Secret, Authorization\r\nX-Secret: s\r\nProxy-Authorization: Basic cHJveHk6cHc=\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\r\n")
	defer conn.Close()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Event struct{ Headers map[string]string } `json:"event"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if out.Event.Headers["authorization"] != tok {
		t.Errorf("function event's authorization: %q", out.Event.Headers["authorization"])
	}
	for _, h := range []string{"connection", "x-secret", "proxy-authorization", "keep-alive", "te"} {
		if v, ok := out.Event.Headers[h]; ok {
			t.Errorf("function event got hop-by-hop request header %s: %q", h, v)
		}
	}
}

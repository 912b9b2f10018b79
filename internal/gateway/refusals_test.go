package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

// raw sends one request exactly as written (no client cleans its path) and
// returns the response.
func (f *fx) raw(request string) *http.Response {
	f.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.gw, "http://"))
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, request)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// gatewayEvents returns "outcome reason" of the gateway's audit events of
// a request.
func (f *fx) gatewayEvents(reqID string) []string {
	f.t.Helper()
	evs := f.AuditEvents(f.t, store.AuditFilter{RequestID: reqID, Component: "gateway"})
	var out []string
	for _, e := range evs {
		out = append(out, e.Outcome+" "+e.Reason)
	}
	return out
}

// A path with a "." or ".." segment, however encoded, is refused: the
// route is chosen by the path as it came, and an upstream that resolved
// the segments would serve what another route guards.
func TestDotSegmentsRefused(t *testing.T) {
	up := newUpstream(t)
	f := startRoutes(t, up.srv.URL, config.Route{Route: "GET /public/{proxy+}"})
	tok := f.issue("demo-web", "alice", orderScope)
	for _, path := range []string{"/public/../orders/7", "/public/..%2Forders%2F7", "/public/%2e%2e/orders/7",
		"/public/./x", "/orders/..", "/public/a/../../orders/7"} {
		resp := f.raw("GET " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok.AccessToken + "\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, resp.StatusCode)
		}
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("%d requests with dot segments reached the upstream", n)
	}
	// Dots within a segment are a name like any other.
	if resp := f.do("GET", "/public/a..b/.hidden", "", nil); resp.StatusCode != 200 || up.hits.Load() != 1 {
		t.Fatalf("dots in a name: %d", resp.StatusCode)
	}
}

// Two Authorization headers on a route with an authorizer are refused: the
// gateway verifies one, and the upstream could read the other.
func TestTwoAuthorizationHeadersRefused(t *testing.T) {
	f := start(t)
	tok := f.issue("demo-web", "alice", orderScope)
	resp := f.raw("GET /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok.AccessToken +
		"\r\nAuthorization: Bearer forged.sub-admin.token\r\nX-Request-Id: two-auth\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest || f.up.hits.Load() != 0 {
		t.Fatalf("two Authorization headers: %d, %d upstream calls", resp.StatusCode, f.up.hits.Load())
	}
	if got := f.gatewayEvents("two-auth"); len(got) != 1 || got[0] != "deny more than one Authorization header" {
		t.Fatalf("audit: %q", got)
	}
}

// A chunked body over the route's max_body is refused with 413, as one
// whose Content-Length is over it is, before the upstream sees any of it;
// one within the limit reaches the upstream whole.
func TestChunkedBodyOverLimit(t *testing.T) {
	up := newUpstream(t)
	var got []byte
	up.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.hits.Add(1)
		got, _ = io.ReadAll(r.Body)
	})
	f := startRoutes(t, up.srv.URL, config.Route{Route: "POST /echo/{proxy+}", Authorizer: "demo", MaxBody: 1000})
	tok := f.issue("demo-web", "alice", orderScope)
	chunked := func(n int, reqID string) *http.Response {
		body := strings.Repeat("x", n)
		return f.raw(fmt.Sprintf("POST /echo/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nX-Request-Id: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
			tok.AccessToken, reqID, n, body))
	}
	if resp := chunked(2000, "chunked-2000"); resp.StatusCode != http.StatusRequestEntityTooLarge || up.hits.Load() != 0 {
		t.Fatalf("2000 chunked bytes over a 1000 limit: %d, %d upstream calls", resp.StatusCode, up.hits.Load())
	}
	if ev := f.gatewayEvents("chunked-2000"); len(ev) != 1 || ev[0] != "deny request body too large" {
		t.Fatalf("audit: %q", ev)
	}
	if resp := chunked(1000, "chunked-1000"); resp.StatusCode != 200 || len(got) != 1000 {
		t.Fatalf("1000 chunked bytes: %d, upstream got %d bytes", resp.StatusCode, len(got))
	}
}

// A request without a bearer token gets a challenge without an error code
// (RFC 6750 §3.1); one with a bad token gets invalid_token.
func TestChallengeWithoutCredentials(t *testing.T) {
	f := start(t)
	for name, auth := range map[string]string{"none": "", "basic": "Basic dXNlcjpwYXNz", "empty bearer": "Bearer "} {
		resp := f.do("GET", "/orders/1", auth, nil)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="writ"` {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	resp := f.do("GET", "/orders/1", "Bearer abc.def.ghi", nil)
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.HasPrefix(got, `Bearer realm="writ", error="invalid_token", error_description=`) {
		t.Errorf("bad token: %d %q", resp.StatusCode, got)
	}
	if f.up.hits.Load() != 0 {
		t.Fatalf("%d refused requests reached the upstream", f.up.hits.Load())
	}
}

// A method a route does not take is 405 with every method it does,
// HEAD with GET (RFC 9110 §10.2.1).
func TestAllowNamesHead(t *testing.T) {
	f := start(t)
	resp := f.do("POST", "/orders/1", "", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("%d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// The caller's sampling decision travels on; a traceparent of a later
// version keeps its trace id (W3C Trace Context §4.3).
func TestTraceparentFlagsAndVersions(t *testing.T) {
	f := start(t)
	tok := f.issue("demo-web", "alice", orderScope)
	for in, want := range map[string]string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00":       "00-4bf92f3577b34da6a3ce929d0e0e4736-*-00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       "00-4bf92f3577b34da6a3ce929d0e0e4736-*-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": "00-4bf92f3577b34da6a3ce929d0e0e4736-*-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       "new",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": "new",
	} {
		f.do("GET", "/orders/1", "Bearer "+tok.AccessToken, map[string]string{"traceparent": in})
		got := f.up.lastRequest().Header.Get("traceparent")
		if want == "new" {
			if len(got) != 55 || strings.Contains(got, "4bf92f3577b34da6a3ce929d0e0e4736") {
				t.Errorf("%s: sent on as %q, want a new trace", in, got)
			}
			continue
		}
		prefix, suffix, _ := strings.Cut(want, "*")
		if len(got) != 55 || !strings.HasPrefix(got, prefix) || !strings.HasSuffix(got, suffix) || strings.Contains(got, "00f067aa0ba902b7") {
			t.Errorf("%s: sent on as %q, want %s with a new span id", in, got, want)
		}
	}
}

// A token the gateway verified but its issuer refuses to exchange
// (revoked since: the user signed out everywhere) is the caller's 401, not
// a 502, and a deny in the audit trail.
func TestExchangeOfARevokedToken(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	tok := f.issue("demo-web", "alice", orderScope)
	if _, err := f.App.Core.Store.UpdateUser(ctx, poolID, "alice", func(u *store.User) error {
		u.RevokedBefore = f.Clock.Now().Add(time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp := f.do("GET", "/files/report.pdf", "Bearer "+tok.AccessToken, map[string]string{"X-Request-Id": "revoked-exchange"})
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(got, `error="invalid_token"`) || f.up.hits.Load() != 0 {
		t.Fatalf("%d %q, %d upstream calls", resp.StatusCode, got, f.up.hits.Load())
	}
	if ev := f.gatewayEvents("revoked-exchange"); len(ev) != 1 || ev[0] != "deny the token was refused by its issuer" {
		t.Fatalf("audit: %q", ev)
	}
}

// On a route whose authorizer accepts ID tokens, as Cognito user pool
// authorizers may, an ID token is exchanged as what it is (the token
// endpoint checks the declared type) for an access token of the upstream.
func TestExchangeOfAnIDToken(t *testing.T) {
	up := newUpstream(t)
	env := apptest.Start(t, func(c *config.Config) {
		c.Gateway.Authorizers[0].TokenUse = []string{"access", "id"}
		routes := c.Gateway.Routes[:0]
		for _, r := range c.Gateway.Routes {
			if r.Upstream != "" {
				r.Upstream = up.srv.URL
				routes = append(routes, r)
			}
		}
		c.Gateway.Routes, c.Gateway.Functions = routes, nil
	})
	f := &fx{Env: env, t: t, gw: env.App.URL(app.Gateway), up: up}
	f.pool, _ = env.App.Pools.Pool(poolID)
	tok := f.issue("demo-web", "alice", "openid")
	if resp := f.do("GET", "/files/report.pdf", "Bearer "+tok.IDToken, nil); resp.StatusCode != 200 {
		t.Fatalf("ID token on an exchange route: %d", resp.StatusCode)
	}
	c := claimsOf(t, up.lastRequest().Header.Get("Authorization"))
	if c["token_use"] != "access" || c["client_id"] != "files-service" && c["aud"] != "files-service" {
		t.Fatalf("the upstream got %v", c)
	}
}

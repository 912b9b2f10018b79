package app_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

// spoofed is what a client writes in its own X-Forwarded-For.
const spoofed = "203.0.113.66"

// reverseProxy runs a reverse proxy on 127.0.0.1 in front of target that,
// as many load balancers do, keeps the X-Forwarded-For its client sent
// and appends the client's address to it.
func reverseProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
		pr.SetXForwarded()
	}})
	t.Cleanup(srv.Close)
	return srv.URL
}

// spoofing sets X-Forwarded-For on every request, as a client may.
type spoofing struct{ next http.RoundTripper }

func (s spoofing) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", spoofed)
	return s.next.RoundTrip(r)
}

// transportFrom returns a transport whose connections come from the
// loopback address ip (127.0.0.2…) and that writes a spoofed
// X-Forwarded-For on every request.
func transportFrom(t *testing.T, ip string) http.RoundTripper {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return spoofing{tr}
}

// cognitoFrom is a Cognito IdP client calling endpoint from ip.
func cognitoFrom(t *testing.T, endpoint, ip string) *cip.Client {
	return cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: aws.AnonymousCredentials{},
		RetryMaxAttempts: 1, HTTPClient: &http.Client{Transport: transportFrom(t, ip)}})
}

func signIn(ctx context.Context, c *cip.Client, user, pw string) error {
	_, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": user, "PASSWORD": pw}})
	return err
}

func wantAPIError(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("%s: want %s, got %v", what, code, err)
	}
}

// sources counts the audit events of component by source address, and
// the usernames each address signed in as (or tried to).
func sources(t *testing.T, env *apptest.Env, component string) (map[string]int, map[string]map[string]int) {
	t.Helper()
	evs := env.AuditEvents(t, store.AuditFilter{Component: component})
	n, users := map[string]int{}, map[string]map[string]int{}
	for _, e := range evs {
		n[e.SourceIP]++
		if users[e.SourceIP] == nil {
			users[e.SourceIP] = map[string]int{}
		}
		users[e.SourceIP][e.Username+" "+e.Outcome]++
	}
	return n, users
}

// TestBehindTrustedProxy: with the idp and the gateway behind a reverse
// proxy on 127.0.0.1 that they trust, each client is known by the address
// the proxy forwarded: the audit trail records it (never the proxy's, nor
// what the client wrote in X-Forwarded-For), and the per-source sign-in
// throttle counts clients apart, so one client's failures do not throttle
// another's sign-in through the same proxy. A client that calls the idp
// directly is its TCP peer, whatever it writes in X-Forwarded-For.
func TestBehindTrustedProxy(t *testing.T) {
	ctx := context.Background()
	env := apptest.Start(t, func(c *config.Config) {
		c.Serve.IDP.TrustedProxies = []string{"127.0.0.1/32", "::1"}
		c.Serve.Gateway.TrustedProxies = []string{"127.0.0.1"}
	})
	proxy := reverseProxy(t, env.App.URL(app.IDP))
	a, b := cognitoFrom(t, proxy, "127.0.0.2"), cognitoFrom(t, proxy, "127.0.0.3")

	if err := signIn(ctx, a, "bob", "Bob-Passw0rd1"); err != nil {
		t.Fatalf("bob from 127.0.0.2 through the proxy: %v", err)
	}
	// 100 failures from 127.0.0.3 (the per-source limit): then it is
	// throttled, even with the right password…
	for i := range 100 {
		wantAPIError(t, fmt.Sprintf("failure %d", i+1), signIn(ctx, b, fmt.Sprintf("nobody-%d", i), "Wrong-Passw0rd1"), "NotAuthorizedException")
	}
	wantAPIError(t, "bob from 127.0.0.3 after its 100 failures", signIn(ctx, b, "bob", "Bob-Passw0rd1"), "TooManyRequestsException")
	// …while 127.0.0.2, through the same proxy, is not.
	if err := signIn(ctx, a, "bob", "Bob-Passw0rd1"); err != nil {
		t.Fatalf("bob from 127.0.0.2 after 127.0.0.3's failures: %v", err)
	}
	// A client calling directly is not a trusted proxy: its own
	// X-Forwarded-For is ignored.
	direct := cognitoFrom(t, env.App.URL(app.IDP), "127.0.0.4")
	if err := signIn(ctx, direct, "bob", "Bob-Passw0rd1"); err != nil {
		t.Fatalf("bob directly from 127.0.0.4: %v", err)
	}

	n, users := sources(t, env, "idp")
	if users["127.0.0.2"]["bob allow"] != 2 || users["127.0.0.3"]["nobody-0 deny"] != 1 || users["127.0.0.3"]["nobody-99 deny"] != 1 ||
		users["127.0.0.3"]["bob deny"] != 1 || users["127.0.0.4"]["bob allow"] != 1 {
		t.Errorf("idp audit events by source: %v", users)
	}
	if n["127.0.0.1"] != 0 || n[spoofed] != 0 || len(n) != 3 {
		t.Errorf("idp audit events by source address: %v", n)
	}

	// The gateway's listener too: a refused token's audit event records
	// the client the proxy forwarded for.
	gw := &http.Client{Transport: transportFrom(t, "127.0.0.5")}
	res, err := gw.Get(reverseProxy(t, env.App.URL(app.Gateway)) + "/orders/1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("gateway without a token: %d", res.StatusCode)
	}
	if n, _ := sources(t, env, "gateway"); n["127.0.0.5"] != 1 || len(n) != 1 {
		t.Errorf("gateway audit events by source address: %v", n)
	}
}

// TestNoTrustedProxies: without trusted_proxies (the default), the client
// is the TCP peer: a client's own X-Forwarded-For is ignored, and behind a
// proxy every client is the proxy.
func TestNoTrustedProxies(t *testing.T) {
	ctx := context.Background()
	env := apptest.Start(t)
	direct := cognitoFrom(t, env.App.URL(app.IDP), "127.0.0.2")
	if err := signIn(ctx, direct, "bob", "Bob-Passw0rd1"); err != nil {
		t.Fatal(err)
	}
	viaProxy := cognitoFrom(t, reverseProxy(t, env.App.URL(app.IDP)), "127.0.0.3")
	if err := signIn(ctx, viaProxy, "bob", "Wrong-Passw0rd1"); err == nil {
		t.Fatal("a wrong password signed in")
	}
	if _, users := sources(t, env, "idp"); users["127.0.0.2"]["bob allow"] != 1 || users["127.0.0.1"]["bob deny"] != 1 || len(users) != 2 {
		t.Errorf("idp audit events by source: %v", users)
	}
}

// forwardedAs writes X-Forwarded-For: ip on every request, as a trusted
// proxy forwarding for ip would.
type forwardedAs struct {
	ip   string
	next http.RoundTripper
}

func (f forwardedAs) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return f.next.RoundTrip(r)
}

// TestIPv6ClientsThrottledBySlash64: an IPv6 client is one source across
// its /64 (the least a site gets), so rotating through its addresses does
// not escape the per-source sign-in throttle; the next /64 is another
// source.
func TestIPv6ClientsThrottledBySlash64(t *testing.T) {
	ctx := context.Background()
	env := apptest.Start(t, func(c *config.Config) { c.Serve.IDP.TrustedProxies = []string{"127.0.0.1"} })
	from := func(ip string) *cip.Client {
		return cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{},
			RetryMaxAttempts: 1, HTTPClient: &http.Client{Transport: forwardedAs{ip, http.DefaultTransport}}})
	}
	for i := range 100 {
		ip := fmt.Sprintf("2001:db8:1:2:%x::1", i+1)
		wantAPIError(t, "failure from "+ip, signIn(ctx, from(ip), fmt.Sprint("nobody-", i), "Wrong-Passw0rd1"), "NotAuthorizedException")
	}
	wantAPIError(t, "bob from another address of the /64", signIn(ctx, from("2001:db8:1:2:ffff::9"), "bob", "Bob-Passw0rd1"), "TooManyRequestsException")
	if err := signIn(ctx, from("2001:db8:1:3::1"), "bob", "Bob-Passw0rd1"); err != nil {
		t.Fatalf("bob from the next /64: %v", err)
	}
}

// statusBehindProxy starts writ with its gateway trusting 127.0.0.1 as a
// proxy and a route GET /status to an upstream that hands over the
// headers of each request it gets; it returns the gateway's URL.
func statusBehindProxy(t *testing.T) (*apptest.Env, *url.URL, chan http.Header) {
	t.Helper()
	seen := make(chan http.Header, 2)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() }))
	t.Cleanup(up.Close)
	env := apptest.Start(t, func(c *config.Config) {
		c.Serve.Gateway.TrustedProxies = []string{"127.0.0.1"}
		c.Gateway.Routes = append(c.Gateway.Routes, config.Route{Route: "GET /status", Upstream: up.URL, Propagate: "forward"})
	})
	u, _ := url.Parse(env.App.URL(app.Gateway))
	return env, u, seen
}

// TestGatewayForwardsTheClientsScheme: behind a trusted TLS-terminating
// proxy, the gateway tells its upstreams the scheme the client used
// (X-Forwarded-Proto), not that of the proxy's hop to it, and the Host the
// proxy kept (X-Forwarded-Host), never an X-Forwarded-Host a client wrote
// and the proxy passed through; a client that is not a trusted proxy
// claims nothing.
func TestGatewayForwardsTheClientsScheme(t *testing.T) {
	env, u, seen := statusBehindProxy(t)
	lb := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host // keeps the client's Host, as load balancers do
		pr.SetXForwarded()       // X-Forwarded-Proto: https
		// A client's X-Forwarded-Host, passed through.
		pr.Out.Header["X-Forwarded-Host"] = pr.In.Header["X-Forwarded-Host"]
	}})
	defer lb.Close()
	lbReq, _ := http.NewRequest("GET", lb.URL+"/status", nil)
	lbReq.Header.Set("X-Forwarded-Host", "evil.example")
	res, err := lb.Client().Do(lbReq)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h := <-seen
	if res.StatusCode != 200 || h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-Host") != strings.TrimPrefix(lb.URL, "https://") {
		t.Fatalf("through the TLS proxy: %d, upstream saw proto %q host %q", res.StatusCode, h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))
	}

	req, _ := http.NewRequest("GET", env.App.URL(app.Gateway)+"/status", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	res, err = (&http.Client{Transport: transportFrom(t, "127.0.0.2")}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h = <-seen
	if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") != u.Host {
		t.Fatalf("an untrusted client's claims: upstream saw proto %q host %q", h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))
	}
}

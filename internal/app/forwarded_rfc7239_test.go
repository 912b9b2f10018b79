package app_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
)

// TestBehindForwardedProxy: behind a trusted TLS proxy that writes only
// the standard Forwarded header (appending its element to the client's
// own line), the gateway knows the client by that element's for= and the
// scheme by its proto=, whatever the client wrote before it.
func TestBehindForwardedProxy(t *testing.T) {
	env, u, seen := statusBehindProxy(t)
	lb := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		host, _, _ := net.SplitHostPort(pr.In.RemoteAddr)
		el := "for=" + host + ";proto=https"
		if prior := pr.In.Header.Values("Forwarded"); len(prior) > 0 {
			el = strings.Join(prior, ", ") + ", " + el
		}
		pr.Out.Header.Set("Forwarded", el)
	}})
	defer lb.Close()
	tr := lb.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}).DialContext
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(path, forwarded string) *http.Response {
		req, _ := http.NewRequest("GET", lb.URL+path, nil)
		req.Header.Set("Forwarded", forwarded)
		req.Header.Set("X-Forwarded-For", spoofed)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := get("/orders/1", `for="`+spoofed); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", res.StatusCode)
	}
	if n, _ := sources(t, env, "gateway"); n["127.0.0.5"] != 1 || len(n) != 1 {
		t.Errorf("gateway audit events by source address: %v", n)
	}
	if res := get("/status", "for="+spoofed+";proto=http"); res.StatusCode != 200 {
		t.Fatalf("status: %d", res.StatusCode)
	}
	if h := <-seen; h.Get("X-Forwarded-For") != "127.0.0.5" || h.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("upstream saw X-Forwarded-For %q, X-Forwarded-Proto %q, Forwarded %q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"), h.Values("Forwarded"))
	}
}

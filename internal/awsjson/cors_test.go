package awsjson

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAllowHeaders(t *testing.T) {
	for _, c := range []struct {
		requested []string
		want      string
	}{
		{nil, corsAllowHeaders},
		{[]string{""}, corsAllowHeaders},
		{[]string{"Content-Type,X-Amz-Target"}, "content-type, x-amz-target"},
		{[]string{"content-type , x-amz-target", "traceparent"}, "content-type, x-amz-target, traceparent"},
		{[]string{"content-type,bad header"}, corsAllowHeaders},
		{[]string{"content-type,x\r\ny"}, corsAllowHeaders},
		{[]string{"content-type,naïve"}, corsAllowHeaders},
		{[]string{strings.Repeat("a,", maxRequestHeaders+1)}, corsAllowHeaders},
	} {
		if got := allowHeaders(c.requested, false); got != c.want {
			t.Errorf("allowHeaders(%q) = %q, want %q", c.requested, got, c.want)
		}
	}
}

// The AWS APIs' CORS is for unsigned calls: a preflight does not allow
// Authorization or X-Amz-Security-Token, and a signed request's answer
// carries no CORS header, so a page cannot have a visitor's browser send
// signed calls from inside its network and read the answers.
func TestCORSUnsigned(t *testing.T) {
	for _, c := range []struct {
		requested []string
		want      string
	}{
		{nil, corsAllowUnsigned},
		{[]string{"content-type,x-amz-target"}, "content-type, x-amz-target"},
		{[]string{"Authorization,X-Amz-Date,x-amz-security-token,content-type"}, "x-amz-date, content-type"},
		{[]string{"authorization"}, corsAllowUnsigned},
	} {
		if got := allowHeaders(c.requested, true); got != c.want {
			t.Errorf("allowHeaders(%q, unsigned) = %q, want %q", c.requested, got, c.want)
		}
	}
	h := CORSUnsigned(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), http.MethodGet, http.MethodPost)
	for _, c := range []struct {
		name string
		set  func(r *http.Request)
		cors bool
	}{
		{"unsigned", func(r *http.Request) {}, true},
		{"a bearer token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, true},
		{"signed", func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20261130/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00")
		}, false},
		{"presigned", func(r *http.Request) {
			r.URL.RawQuery = "Action=GetCallerIdentity&X-Amz-Credential=x&X-Amz-Signature=00"
		}, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Origin", "http://127.0.0.1:9")
		c.set(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Header().Get("Access-Control-Allow-Origin") == "*"; got != c.cors {
			t.Errorf("%s: CORS %v, want %v", c.name, got, c.cors)
		}
	}
}

func TestHandleCORS(t *testing.T) {
	mux := http.NewServeMux()
	HandleCORS(mux, "/{pool}/thing", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}), http.MethodGet)
	mux.HandleFunc("GET /{pool}/page", func(w http.ResponseWriter, r *http.Request) {})
	do := func(method, path string, preflight bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Origin", "http://127.0.0.1:9")
		if preflight {
			r.Header.Set("Access-Control-Request-Method", "GET")
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	for _, c := range []struct {
		method    string
		preflight bool
		status    int
		allow     string
	}{
		{"GET", false, http.StatusTeapot, ""},
		{"HEAD", false, http.StatusTeapot, ""},
		{"POST", false, http.StatusMethodNotAllowed, "GET, HEAD, OPTIONS"},
		{"OPTIONS", false, http.StatusNoContent, "GET, HEAD, OPTIONS"},
		{"OPTIONS", true, http.StatusNoContent, "GET, HEAD, OPTIONS"},
	} {
		w := do(c.method, "/p/thing", c.preflight)
		h := w.Header()
		if w.Code != c.status || h.Get("Allow") != c.allow || h.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s (preflight %v): %d %v", c.method, c.preflight, w.Code, h)
		}
		if got := h.Get("Access-Control-Allow-Methods"); c.preflight != (got == "GET") {
			t.Errorf("%s (preflight %v): Allow-Methods %q", c.method, c.preflight, got)
		}
		if got := h.Get("Access-Control-Expose-Headers"); (c.method != "OPTIONS") != (got != "") {
			t.Errorf("%s (preflight %v): Expose-Headers %q", c.method, c.preflight, got)
		}
	}
	if w := do("GET", "/p/page", false); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a path not registered with HandleCORS: %v", w.Header())
	}
}

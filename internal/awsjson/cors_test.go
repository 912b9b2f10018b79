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
		if got := allowHeaders(c.requested); got != c.want {
			t.Errorf("allowHeaders(%q) = %q, want %q", c.requested, got, c.want)
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

package oidc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// Handler serves the OAuth 2.0 and OpenID Connect endpoints and the hosted
// pages of every pool of a userpool.Service, each under its issuer's path
// (/<pool id>/...), with the RFC 8414 metadata also at
// /.well-known/oauth-authorization-server/<pool id>. It is safe for
// concurrent use.
type Handler struct {
	svc   *userpool.Service
	store webStore
	log   *slog.Logger
	mux   *http.ServeMux
	now   func() time.Time
}

// webStore is what the endpoints keep themselves: hosted-flow
// transactions, browser sessions, authorization codes and single-use
// client-assertion ids.
type webStore interface {
	store.Sessions
	store.OneTime
}

// New returns the handler for svc's pools. st keeps the endpoints' own
// state; now is the clock (nil: time.Now).
func New(svc *userpool.Service, st webStore, log *slog.Logger, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, store: st, log: log, mux: http.NewServeMux(), now: now}
	m := h.mux
	// What browser apps call with fetch or XHR (oidc-client-ts, Amplify):
	// CORS for any origin, since they authenticate with what the request
	// carries, never with a cookie.
	api := func(path string, f http.HandlerFunc, methods ...string) { awsjson.HandleCORS(m, path, f, methods...) }
	api("/{pool}/.well-known/openid-configuration", h.discovery, "GET")
	api("/{pool}/.well-known/oauth-authorization-server", h.discovery, "GET")
	// RFC 8414 §3.1: the well-known segment goes before the issuer's path.
	api("/.well-known/oauth-authorization-server/{pool}", h.discovery, "GET")
	api("/{pool}/.well-known/jwks.json", h.jwks, "GET")
	api("/{pool}/oauth2/token", h.token, "POST")
	api("/{pool}/oauth2/revoke", h.revoke, "POST")
	api("/{pool}/oauth2/introspect", h.introspect, "POST")
	api("/{pool}/oauth2/userInfo", h.userInfo, "GET", "POST")

	// The authorization endpoint and the hosted pages rely on the
	// browser's cookies: no CORS, ever.
	m.HandleFunc("GET /{pool}/oauth2/authorize", h.authorize)
	m.HandleFunc("POST /{pool}/oauth2/authorize", h.authorize)

	m.HandleFunc("GET /{pool}/login", h.loginPage)
	m.HandleFunc("POST /{pool}/login", h.loginPost)
	m.HandleFunc("POST /{pool}/login/totp", h.totpPost)
	m.HandleFunc("POST /{pool}/login/enrol", h.enrolPost)
	m.HandleFunc("POST /{pool}/login/newpassword", h.newPasswordPost)
	m.HandleFunc("GET /{pool}/signup", h.formPage(formSignup, "Create an account"))
	m.HandleFunc("POST /{pool}/signup", h.signupPost)
	m.HandleFunc("POST /{pool}/confirm", h.confirmPost)
	m.HandleFunc("GET /{pool}/forgot", h.formPage(formForgot, "Reset your password"))
	m.HandleFunc("POST /{pool}/forgot", h.forgotPost)
	m.HandleFunc("POST /{pool}/reset", h.resetPost)
	m.HandleFunc("GET /{pool}/logout", h.logout)
	m.HandleFunc("POST /{pool}/logout", h.logout)
	return h
}

// ServeHTTP routes r to the endpoint of its pool.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// pool returns the pool named by the request path, answering 404 when
// there is none.
func (h *Handler) pool(w http.ResponseWriter, r *http.Request) (*userpool.Pool, bool) {
	p, ok := h.svc.Pool(r.PathValue("pool"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "unknown user pool"})
	}
	return p, ok
}

// requestContext carries the request id, source address and trace into
// the audit events the request causes.
func (h *Handler) requestContext(r *http.Request) context.Context {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 128 {
		id = audit.NewRequestID()
	}
	return audit.WithRequest(r.Context(), audit.RequestInfo{ID: id, SourceIP: awsjson.SourceIP(r), TraceID: awsjson.TraceID(r.Header.Get("traceparent"))})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

package oidc

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/writ-id/writ/internal/store"

	"github.com/writ-id/writ/internal/userpool"
)

// Handler serves the OIDC endpoints of every pool.
type Handler struct {
	svc   *userpool.Service
	store webStore
	log   *slog.Logger
	mux   *http.ServeMux
	now   func() time.Time
}

// webStore is what the endpoints keep: hosted-flow sessions, codes and
// single-use client assertions.
type webStore interface {
	store.Sessions
	store.OneTime
}

// New returns the OIDC handler for svc's pools; now is the clock (nil:
// time.Now).
func New(svc *userpool.Service, st webStore, log *slog.Logger, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	h := &Handler{svc: svc, store: st, log: log, mux: http.NewServeMux(), now: now}
	h.mux.HandleFunc("GET /{pool}/.well-known/openid-configuration", h.discovery)
	h.mux.HandleFunc("GET /{pool}/.well-known/oauth-authorization-server", h.discovery)
	h.mux.HandleFunc("GET /{pool}/.well-known/jwks.json", h.jwks)
	h.mux.HandleFunc("POST /{pool}/oauth2/token", h.token)
	h.mux.HandleFunc("POST /{pool}/oauth2/revoke", h.revoke)
	h.mux.HandleFunc("POST /{pool}/oauth2/introspect", h.introspect)
	h.mux.HandleFunc("GET /{pool}/oauth2/userInfo", h.userInfo)
	h.mux.HandleFunc("POST /{pool}/oauth2/userInfo", h.userInfo)
	h.mux.HandleFunc("GET /{pool}/oauth2/authorize", h.authorize)
	h.mux.HandleFunc("GET /{pool}/login", h.loginPage)
	h.mux.HandleFunc("POST /{pool}/login", h.loginPost)
	h.mux.HandleFunc("POST /{pool}/login/totp", h.totpPost)
	h.mux.HandleFunc("POST /{pool}/login/enrol", h.enrolPost)
	h.mux.HandleFunc("POST /{pool}/login/newpassword", h.newPasswordPost)
	h.mux.HandleFunc("GET /{pool}/signup", h.simplePage("signup", "Create an account"))
	h.mux.HandleFunc("POST /{pool}/signup", h.signupPost)
	h.mux.HandleFunc("POST /{pool}/confirm", h.confirmPost)
	h.mux.HandleFunc("GET /{pool}/forgot", h.simplePage("forgot", "Reset your password"))
	h.mux.HandleFunc("POST /{pool}/forgot", h.forgotPost)
	h.mux.HandleFunc("POST /{pool}/reset", h.resetPost)
	h.mux.HandleFunc("GET /{pool}/logout", h.logout)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) pool(w http.ResponseWriter, r *http.Request) (*userpool.Pool, bool) {
	p, ok := h.svc.Pool(r.PathValue("pool"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "unknown user pool"})
	}
	return p, ok
}

// Discovery is the OpenID Provider metadata document.
type Discovery struct {
	Issuer                            string   `json:"issuer"`
	JWKSURI                           string   `json:"jwks_uri"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserInfoEndpoint                  string   `json:"userinfo_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
}

func (h *Handler) discovery(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	iss := p.Issuer()
	scopes := []string{"openid", "email", "profile", "phone", userpool.ScopeAdmin}
	for _, rs := range p.Config().ResourceServers {
		for _, s := range rs.Scopes {
			scopes = append(scopes, rs.Identifier+"/"+s)
		}
	}
	d := Discovery{
		Issuer:                            iss,
		JWKSURI:                           iss + "/.well-known/jwks.json",
		TokenEndpoint:                     iss + "/oauth2/token",
		UserInfoEndpoint:                  iss + "/oauth2/userInfo",
		RevocationEndpoint:                iss + "/oauth2/revoke",
		IntrospectionEndpoint:             iss + "/oauth2/introspect",
		GrantTypesSupported:               []string{grantRefreshToken, grantClientCredentials, grantTokenExchange},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		ResponseTypesSupported:            []string{"code"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{p.Config().SigningAlg},
		ScopesSupported:                   scopes,
		ClaimsSupported: []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "token_use", "cognito:username",
			"cognito:groups", "cognito:roles", "cognito:preferred_role", "email", "email_verified", "amr"},
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, d)
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	set, err := p.Keys().JWKS(r.Context(), p.ID())
	if err != nil {
		h.log.Error("jwks", "pool", p.ID(), "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	maxAge := int(p.Keys().JWKSMaxAge().Seconds())
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d, must-revalidate", maxAge))
	writeJSON(w, http.StatusOK, set)
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

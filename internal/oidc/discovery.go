package oidc

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/writ-id/writ/internal/userpool"
)

// Handler serves the OIDC endpoints of every pool.
type Handler struct {
	svc *userpool.Service
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the OIDC handler for svc's pools.
func New(svc *userpool.Service, log *slog.Logger) *Handler {
	h := &Handler{svc: svc, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{pool}/.well-known/openid-configuration", h.discovery)
	h.mux.HandleFunc("GET /{pool}/.well-known/oauth-authorization-server", h.discovery)
	h.mux.HandleFunc("GET /{pool}/.well-known/jwks.json", h.jwks)
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
		Issuer:                           iss,
		JWKSURI:                          iss + "/.well-known/jwks.json",
		ResponseTypesSupported:           []string{"code"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{p.Config().SigningAlg},
		ScopesSupported:                  scopes,
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

// IsWellKnown reports whether a path is under a pool's .well-known tree.
func IsWellKnown(path string) bool { return strings.Contains(path, "/.well-known/") }

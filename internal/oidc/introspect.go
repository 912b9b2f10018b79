package oidc

import (
	"net/http"
)

// introspect is the introspection endpoint (RFC 7662) for confidential
// clients: {"active": false} for anything not a live token of this pool,
// and for a refresh or ID token of another client; otherwise the token's
// claims.
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	form, c, err := h.clientForm(ctx, w, r, p)
	if err != nil {
		h.writeOAuthError(w, r, err)
		return
	}
	if c.Public {
		h.writeOAuthError(w, r, oauthError(errInvalidClient, "introspection is for confidential clients"))
		return
	}
	tok := form.Get("token")
	if tok == "" {
		h.writeOAuthError(w, r, oauthError(errInvalidRequest, "token is required"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, p.Introspect(ctx, c, tok))
}

package oidc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/writ-id/writ/internal/userpool"
)

// userInfo is the OpenID Connect UserInfo endpoint (Core §5.3) at
// Cognito's path: the claims of the user a Bearer access token names,
// per its scopes. A missing, invalid, expired or revoked token is 401 with
// a WWW-Authenticate challenge (RFC 6750 §3).
func (h *Handler) userInfo(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	scheme, raw, found := strings.Cut(r.Header.Get("Authorization"), " ")
	raw = strings.TrimSpace(raw)
	if !found || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		// RFC 6750 §3.1: no error code when no credentials were sent,
		// neither in the challenge nor in the body.
		w.Header().Set("WWW-Authenticate", `Bearer realm="writ"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error_description": "a Bearer access token is required"})
		return
	}
	info, err := p.UserInfo(h.requestContext(r), raw)
	if err != nil {
		var oe *userpool.OAuthError
		if !errors.As(err, &oe) {
			oe = oauthError(errInvalidToken, "the access token is invalid")
		}
		status := http.StatusUnauthorized
		if oe.Code == errInsufficientScope {
			status = http.StatusForbidden
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="writ", error=%q, error_description=%q`, oe.Code, oe.Description))
		writeJSON(w, status, map[string]string{"error": oe.Code, "error_description": oe.Description})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, info)
}

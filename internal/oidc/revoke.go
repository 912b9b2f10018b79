package oidc

import (
	"errors"
	"net/http"
	"strings"

	"github.com/writ-id/writ/internal/userpool"
)

// revoke is the revocation endpoint (RFC 7009), as Cognito's: a refresh
// token's whole family is revoked, and with it the access tokens of that
// sign-in; an unknown token, or one issued to another client, answers 200
// and changes nothing; an access token is unsupported_token_type.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
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
	tok := form.Get("token")
	if tok == "" {
		h.writeOAuthError(w, r, oauthError(errInvalidRequest, "token is required"))
		return
	}
	if strings.Count(tok, ".") == 2 {
		h.writeOAuthError(w, r, oauthError(errUnsupportedTokenType, "only refresh tokens can be revoked"))
		return
	}
	if err := p.RevokeRefresh(ctx, c, tok); err != nil {
		var ue *userpool.Error
		if !errors.As(err, &ue) || ue.Code != userpool.CodeUnauthorized {
			h.writeOAuthError(w, r, err)
			return
		}
		// RFC 7009 §2.1: another client's token is not revoked, and the
		// answer does not say so.
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

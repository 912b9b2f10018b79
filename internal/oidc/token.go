package oidc

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// Grant types of the token endpoint.
const (
	grantAuthorizationCode = "authorization_code"
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// grantHandler runs one grant for an authenticated client and returns the
// token response.
type grantHandler func(h *Handler, ctx context.Context, p *userpool.Pool, c store.Client, form url.Values) (map[string]any, error)

// grant describes one grant type: its handler, the client flow (config
// `flows`) that allows it, and whether public clients may use it.
type grant struct {
	flow   string
	public bool
	handle grantHandler
}

var grants = map[string]grant{
	grantAuthorizationCode: {flow: "authorization_code", public: true, handle: (*Handler).authorizationCodeGrant},
	grantRefreshToken:      {flow: "refresh_token", public: true, handle: (*Handler).refreshTokenGrant},
	grantClientCredentials: {flow: "client_credentials", handle: (*Handler).clientCredentialsGrant},
	grantTokenExchange:     {flow: "token_exchange", handle: (*Handler).tokenExchangeGrant},
}

// token is the token endpoint (RFC 6749 §3.2).
func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	ctx := h.requestContext(r)
	body, err := h.runGrant(ctx, w, r, p)
	if err != nil {
		h.writeOAuthError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body)
}

func (h *Handler) runGrant(ctx context.Context, w http.ResponseWriter, r *http.Request, p *userpool.Pool) (map[string]any, error) {
	form, c, err := h.clientForm(ctx, w, r, p)
	if err != nil {
		return nil, err
	}
	gt := form.Get("grant_type")
	if gt == "" {
		return nil, oauthError(errInvalidRequest, "grant_type is required")
	}
	g, ok := grants[gt]
	if !ok {
		return nil, oauthError(errUnsupportedGrantType, fmt.Sprintf("unsupported grant_type %.60q", gt))
	}
	if !userpool.HasFlow(c, g.flow) {
		return nil, oauthError(errUnauthorizedClient, "this client may not use the "+gt+" grant")
	}
	if c.Public && !g.public {
		return nil, oauthError(errUnauthorizedClient, "a public client cannot use the "+gt+" grant")
	}
	return g.handle(h, ctx, p, c, form)
}

// tokenBody is the RFC 6749 §5.1 response for t.
func tokenBody(t userpool.Tokens) map[string]any {
	body := map[string]any{"access_token": t.AccessToken, "token_type": "Bearer", "expires_in": t.ExpiresIn}
	if t.IDToken != "" {
		body["id_token"] = t.IDToken
	}
	if t.RefreshToken != "" {
		body["refresh_token"] = t.RefreshToken
	}
	if t.Scope != "" {
		body["scope"] = t.Scope
	}
	return body
}

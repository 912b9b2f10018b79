package oidc

import (
	"context"
	"net/url"
	"strings"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// clientCredentialsGrant is the client_credentials grant (RFC 6749 §4.4):
// an access token for the confidential client itself (sub = client_id),
// with resource-server scopes and no refresh token.
func (h *Handler) clientCredentialsGrant(ctx context.Context, p *userpool.Pool, c store.Client, form url.Values) (map[string]any, error) {
	t, err := p.ClientCredentials(ctx, c, strings.Fields(form.Get("scope")))
	if err != nil {
		return nil, err
	}
	return tokenBody(t), nil
}

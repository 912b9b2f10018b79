package oidc

import (
	"context"
	"net/url"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// refreshTokenGrant is the refresh_token grant (RFC 6749 §6): rotation,
// reuse detection that revokes the family, and a grace period in which a
// retry whose response was lost gets the same tokens (userpool.Pool.Refresh).
// The scope stays that of the original grant; a scope parameter is ignored,
// as Cognito does.
func (h *Handler) refreshTokenGrant(ctx context.Context, p *userpool.Pool, c store.Client, form url.Values) (map[string]any, error) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, oauthError(errInvalidRequest, "refresh_token is required")
	}
	t, err := p.Refresh(ctx, c, rt)
	if err != nil {
		return nil, err
	}
	return tokenBody(t), nil
}

package oidc

import (
	"context"
	"net/url"
	"strings"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// tokenExchangeGrant is the RFC 8693 token exchange: the authenticated
// client trades a user's token for an access token bound to audience (or
// resource), naming itself as the actor (userpool.Pool.Exchange). The
// client is the actor, so actor_token is refused.
func (h *Handler) tokenExchangeGrant(ctx context.Context, p *userpool.Pool, c store.Client, form url.Values) (map[string]any, error) {
	aud := form.Get("audience")
	if res := form.Get("resource"); aud == "" {
		aud = res
	} else if res != "" && res != aud {
		return nil, oauthError(errInvalidTarget, "audience and resource name different targets")
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != userpool.TokenTypeAccess && rt != userpool.TokenTypeJWT {
		return nil, oauthError(errInvalidRequest, "only access tokens can be requested")
	}
	if form.Get("actor_token") != "" || form.Get("actor_token_type") != "" {
		return nil, oauthError(errInvalidRequest, "actor_token is not supported: the authenticated client is the actor")
	}
	res, err := p.Exchange(ctx, userpool.Exchange{Client: c, SubjectToken: form.Get("subject_token"),
		SubjectTokenType: form.Get("subject_token_type"), Audience: aud, Scope: strings.Fields(form.Get("scope"))})
	if err != nil {
		return nil, err
	}
	body := tokenBody(res.Tokens)
	body["issued_token_type"] = userpool.TokenTypeAccess
	body["scope"] = strings.Join(res.Scope, " ")
	return body, nil
}

package oidc

import (
	"context"
	"errors"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/internal/userpool"
)

// hint is what an id_token_hint names: the client(s) it was issued to and
// the user.
type hint struct {
	Audience []string
	Subject  string
}

// readHint reads an id_token_hint: an ID token writ signed, expired or
// not (Pool.IDTokenHint). A hint whose key writ no longer publishes (a
// rotated-out key, an RP keeping the ID token of a sign-in from before
// the rotation) or cannot load is read without its signature, if it
// names this issuer and is an ID token: a hint only narrows what a
// request does (whose logout URIs apply, whose browser session may be
// reused), it never grants. ok is false for a hint writ did not sign.
func readHint(ctx context.Context, p *userpool.Pool, raw string) (hint, bool) {
	c, err := p.IDTokenHint(ctx, raw)
	if err == nil {
		return hint{Audience: c.Audience, Subject: c.Subject}, true
	}
	if !errors.Is(err, token.ErrUnknownKey) && !errors.Is(err, token.ErrKeysUnavailable) {
		return hint{}, false
	}
	tok, perr := jwt.ParseSigned(raw, token.AllowedAlgorithms)
	if perr != nil {
		return hint{}, false
	}
	var claims struct {
		Issuer   string       `json:"iss"`
		Subject  string       `json:"sub"`
		Audience jwt.Audience `json:"aud"`
		TokenUse string       `json:"token_use"`
	}
	if tok.UnsafeClaimsWithoutVerification(&claims) != nil || claims.Issuer != p.Issuer() || claims.TokenUse != token.UseID {
		return hint{}, false
	}
	return hint{Audience: claims.Audience, Subject: claims.Subject}, true
}

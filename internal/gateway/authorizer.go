package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/jwks"
	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/sdk"
)

// authorizer is a JWT authorizer: one issuer (its keys and verified-token
// cache in a jwks.Verifier) and the token uses and audiences it accepts.
type authorizer struct {
	cfg      *config.Authorizer
	verifier *jwks.Verifier
}

// authError is a refusal: 401 (invalid_token), 403 (insufficient_scope),
// or 503 when the issuer's keys could not be had.
type authError struct {
	status      int
	code        string
	description string
	scope       string
	// expired: a token the issuer signed, refused only for its age. Its
	// holder is to refresh it: not counted as a flood (see serve).
	expired bool
}

func (e *authError) Error() string { return "gateway: " + e.code + ": " + e.description }

func unauthorized(desc string) *authError {
	return &authError{status: http.StatusUnauthorized, code: "invalid_token", description: desc}
}

// challenge is the error's WWW-Authenticate value, as services built on
// the SDK answer theirs.
func (e *authError) challenge() string {
	return (&sdk.Error{Code: e.code, Description: e.description, Scope: e.scope}).Challenge()
}

// authorize verifies raw for a route requiring scopes. A token refused
// only for a missing scope (403) still names its caller: the claims are
// returned with the error, for the audit trail.
func (a *authorizer) authorize(ctx context.Context, raw string, scopes []string) (*token.Claims, *authError) {
	if raw == "" {
		return nil, &authError{status: http.StatusUnauthorized, description: "no token"}
	}
	c, err := a.verifier.Verify(ctx, raw)
	if errors.Is(err, token.ErrKeysUnavailable) {
		// The gateway's failure, not the caller's token.
		return nil, &authError{status: http.StatusServiceUnavailable, description: "the issuer's keys are unavailable"}
	}
	if err != nil {
		e := unauthorized(describe(err))
		e.expired = errors.Is(err, token.ErrExpired) // checked after the signature and issuer
		return nil, e
	}
	req := token.Requirements{TokenUse: a.cfg.TokenUse, Audiences: a.cfg.Audiences, Scopes: scopes}
	switch err := req.Check(c); {
	case errors.Is(err, token.ErrTokenUse):
		return nil, unauthorized("the token's token_use is not accepted here")
	case errors.Is(err, token.ErrAudience):
		return nil, unauthorized("the token does not have a valid audience")
	case errors.Is(err, token.ErrScope):
		return c, &authError{status: http.StatusForbidden, code: "insufficient_scope",
			description: "the token lacks a required scope", scope: strings.Join(scopes, " ")}
	}
	return c, nil
}

func describe(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "the token has expired"
	case errors.Is(err, token.ErrNotYetValid):
		return "the token is not valid yet"
	case errors.Is(err, token.ErrIssuer):
		return "the token has the wrong issuer"
	case errors.Is(err, token.ErrUnknownKey), errors.Is(err, token.ErrSignature), errors.Is(err, token.ErrAlgorithm):
		return "the token signature could not be verified"
	}
	return "the token is malformed"
}

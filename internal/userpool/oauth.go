package userpool

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/token"
)

// Token-type URNs of RFC 8693.
const (
	TokenTypeAccess = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeID     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT    = "urn:ietf:params:oauth:token-type:jwt"
)

// OAuthError is an OAuth 2.0 error (RFC 6749 §5.2, RFC 8693 §2.2.2) whose
// Code and Description are safe to return to the client.
type OAuthError struct {
	Code        string
	Description string
	Cause       error
}

func (e *OAuthError) Error() string {
	s := "userpool: oauth " + e.Code + ": " + e.Description
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *OAuthError) Unwrap() error { return e.Cause }

func oauthErr(code, desc string) *OAuthError { return &OAuthError{Code: code, Description: desc} }

// CustomScopes returns the resource-server scopes the client may request.
func (p *Pool) CustomScopes(c store.Client) []string {
	defined := map[string]bool{}
	for _, rs := range p.cfg.ResourceServers {
		for _, s := range rs.Scopes {
			defined[rs.Identifier+"/"+s] = true
		}
	}
	var out []string
	for _, s := range c.Scopes {
		if defined[s] {
			out = append(out, s)
		}
	}
	return out
}

// ClientCredentials issues an access token to a confidential client for
// itself (sub = client_id), with the requested resource-server scopes (all
// the client may have when none are requested).
func (p *Pool) ClientCredentials(ctx context.Context, c store.Client, requested []string) (Tokens, error) {
	allowed := p.CustomScopes(c)
	scope := allowed
	if len(requested) > 0 {
		for _, s := range requested {
			if !contains(allowed, s) {
				err := oauthErr("invalid_scope", "scope "+s+" is not allowed for this client")
				p.record(ctx, audit.Event{Action: "token.client_credentials", ClientID: c.ClientID, Sub: c.ClientID, Outcome: audit.Deny, Reason: err.Description})
				return Tokens{}, err
			}
		}
		scope = requested
	}
	key, err := p.signer(ctx)
	if err != nil {
		return Tokens{}, err
	}
	now := p.now()
	life := p.cfg.Tokens.Access
	claims := map[string]any{
		"iss": p.issuer, "sub": c.ClientID, "client_id": c.ClientID, "aud": c.ClientID, "token_use": token.UseAccess,
		"scope": strings.Join(scope, " "), "iat": now.Unix(), "exp": now.Add(life).Unix(), "jti": uuid.NewString(),
	}
	at, err := token.Mint(key, claims)
	if err != nil {
		return Tokens{}, internal(err)
	}
	p.record(ctx, audit.Event{Action: "token.client_credentials", ClientID: c.ClientID, Sub: c.ClientID, Outcome: audit.Allow,
		Reason: "scope " + strings.Join(scope, " ")})
	return Tokens{AccessToken: at, ExpiresIn: int(life / time.Second), TokenType: "Bearer", Scope: strings.Join(scope, " ")}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Introspection is an RFC 7662 answer.
type Introspection map[string]any

// Introspect reports whether a token of this pool is active, and its
// claims: JWTs are verified and checked for revocation, refresh tokens
// looked up.
func (p *Pool) Introspect(ctx context.Context, raw string) Introspection {
	inactive := Introspection{"active": false}
	if strings.Count(raw, ".") == 2 {
		c, err := p.verifier.Verify(ctx, raw)
		if err != nil {
			return inactive
		}
		if revoked, err := p.originRevoked(ctx, c.OriginJTI); err != nil || revoked {
			return inactive
		}
		if c.Subject != c.ClientID {
			u, err := p.st().GetUserBySub(ctx, c.Subject)
			if err != nil || !u.Enabled || (!u.RevokedBefore.IsZero() && c.IssuedAt < u.RevokedBefore.Unix()) {
				return inactive
			}
		}
		out := Introspection{"active": true, "token_type": "Bearer"}
		for k, v := range c.Raw {
			out[k] = v
		}
		return out
	}
	rt, err := p.st().GetRefreshToken(ctx, hashID(raw))
	if err != nil || rt.PoolID != p.cfg.ID || rt.Revoked || !p.now().Before(rt.ExpiresAt) || !rt.UsedAt.IsZero() {
		return inactive
	}
	return Introspection{"active": true, "token_type": "refresh_token", "client_id": rt.ClientID, "sub": rt.Sub,
		"username": rt.Username, "scope": rt.Scope, "exp": rt.ExpiresAt.Unix(), "iat": rt.CreatedAt.Unix(), "iss": p.issuer}
}

// UserInfo returns the OIDC claims of the user an access token names.
func (p *Pool) UserInfo(ctx context.Context, raw string) (map[string]any, error) {
	c, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, &OAuthError{Code: "invalid_token", Description: "the access token is invalid or expired", Cause: err}
	}
	if c.TokenUse != token.UseAccess || !(c.HasScope("openid") || c.HasScope(ScopeAdmin)) {
		return nil, oauthErr("insufficient_scope", "the access token does not allow userInfo")
	}
	u, err := p.st().GetUserBySub(ctx, c.Subject)
	if err != nil || u.PoolID != p.cfg.ID || !u.Enabled {
		return nil, oauthErr("invalid_token", "the access token is invalid")
	}
	if revoked, err := p.originRevoked(ctx, c.OriginJTI); err != nil || revoked || (!u.RevokedBefore.IsZero() && c.IssuedAt < u.RevokedBefore.Unix()) {
		return nil, oauthErr("invalid_token", "the access token has been revoked")
	}
	out := map[string]any{"sub": u.Sub, "username": u.Username}
	all := c.HasScope(ScopeAdmin)
	if all || c.HasScope("email") {
		if u.Email != "" {
			out["email"] = u.Email
			out["email_verified"] = fmt.Sprint(u.EmailVerified)
		}
	}
	if all || c.HasScope("profile") {
		for k, v := range u.Attributes {
			out[k] = v
		}
	}
	return out, nil
}

// UserBySub returns the user with sub.
func (s *Service) UserBySub(ctx context.Context, sub string) (store.User, error) {
	return s.deps.Store.GetUserBySub(ctx, sub)
}

// SessionLive reports whether a challenge session string is still usable.
func (p *Pool) SessionLive(ctx context.Context, raw string) (string, bool) {
	if raw == "" || len(raw) > 1024 {
		return "", false
	}
	s, err := p.st().GetSession(ctx, hashID(raw), p.now())
	if err != nil {
		return "", false
	}
	return s.Username, true
}

// RevokeSignIn revokes every refresh token and access token of one sign-in
// (its origin_jti), e.g. when the authorization code that began it is
// replayed.
func (p *Pool) RevokeSignIn(ctx context.Context, originJTI string) error {
	if _, err := p.st().RevokeRefreshFamily(ctx, originJTI); err != nil {
		return internal(err)
	}
	if err := p.revokeOrigin(ctx, originJTI); err != nil {
		return err
	}
	p.record(ctx, audit.Event{Action: "token.revoke_sign_in", Outcome: audit.Allow, Reason: "authorization code replayed"})
	return nil
}

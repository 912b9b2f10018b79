package userpool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/token"
)

// Exchange is an RFC 8693 token-exchange request by an authenticated client.
type Exchange struct {
	Client           store.Client
	SubjectToken     string
	SubjectTokenType string
	// Audience is the target (audience or resource parameter).
	Audience string
	// Scope narrows the subject token's scope (empty: keep it).
	Scope []string
}

// ExchangeResult is the issued token with the chain it carries.
type ExchangeResult struct {
	Tokens
	Scope      []string
	ActorChain []string
	Subject    *token.Claims
}

// Exchange trades a user's token for an access token bound to another
// audience, naming the calling client as the actor with any earlier actor
// nested inside (RFC 8693 §4.1).
func (p *Pool) Exchange(ctx context.Context, x Exchange) (ExchangeResult, error) {
	res, err := p.exchange(ctx, x)
	ev := audit.Event{Action: "token.exchange", ClientID: x.Client.ClientID, Resource: x.Audience, Outcome: audit.Allow}
	if res.Subject != nil {
		ev.Sub, ev.Username = res.Subject.Subject, res.Subject.User()
	}
	ev.ActorChain = res.ActorChain
	if err != nil {
		ev.Outcome = audit.Deny
		var oe *OAuthError
		if errors.As(err, &oe) {
			ev.Reason = oe.Code + ": " + oe.Description
			if oe.Cause != nil {
				ev.Reason += " (" + oe.Cause.Error() + ")"
			}
		} else {
			ev.Outcome, ev.Reason = audit.Error, err.Error()
		}
	}
	p.record(ctx, ev)
	return res, err
}

func (p *Pool) exchange(ctx context.Context, x Exchange) (ExchangeResult, error) {
	var res ExchangeResult
	switch x.SubjectTokenType {
	case TokenTypeAccess, TokenTypeID, TokenTypeJWT:
	case "":
		return res, oauthErr("invalid_request", "subject_token_type is required")
	default:
		return res, oauthErr("invalid_request", "unsupported subject_token_type")
	}
	if x.SubjectToken == "" {
		return res, oauthErr("invalid_request", "subject_token is required")
	}
	if x.Audience == "" {
		return res, oauthErr("invalid_target", "audience or resource is required")
	}
	if !contains(x.Client.ExchangeAudiences, x.Audience) {
		return res, oauthErr("invalid_target", "this client may not exchange tokens for audience "+x.Audience)
	}
	sub, err := p.verifier.Verify(ctx, x.SubjectToken)
	if err != nil {
		return res, &OAuthError{Code: "invalid_request", Description: "subject_token failed verification", Cause: err}
	}
	res.Subject = sub
	if sub.TokenUse != token.UseAccess && sub.TokenUse != token.UseID {
		return res, oauthErr("invalid_request", "subject_token is not an access or ID token")
	}
	// The declared type must be what the token is (RFC 8693 §2.1); the
	// generic JWT type covers both.
	if (x.SubjectTokenType == TokenTypeAccess && sub.TokenUse != token.UseAccess) ||
		(x.SubjectTokenType == TokenTypeID && sub.TokenUse != token.UseID) {
		return res, oauthErr("invalid_request", "subject_token is not of subject_token_type")
	}
	if sub.ClientID != "" && sub.Subject == sub.ClientID && sub.Username == "" {
		return res, oauthErr("invalid_request", "subject_token must represent a user")
	}
	u, err := p.st().GetUserBySub(ctx, sub.Subject)
	if err != nil || u.PoolID != p.cfg.ID {
		return res, &OAuthError{Code: "invalid_request", Description: "subject_token failed verification", Cause: errors.New("unknown subject")}
	}
	if !u.Enabled {
		return res, oauthErr("invalid_request", "subject is disabled")
	}
	revoked, err := p.originRevoked(ctx, sub.OriginJTI)
	if err != nil {
		return res, internal(err)
	}
	if !revoked {
		if revoked, err = p.signedOut(ctx, u, sub.IssuedAt, sub.OriginJTI); err != nil {
			return res, err
		}
	}
	if revoked {
		return res, oauthErr("invalid_request", "subject_token has been revoked")
	}
	if ma := sub.MayAct; ma != nil && ma.Subject != x.Client.ClientID && ma.ClientID != x.Client.ClientID {
		return res, oauthErr("unauthorized_client", "the subject token's may_act does not name this client")
	}
	depth := sub.Act.Depth() + 1
	if depth > p.cfg.MaxActorChain {
		return res, oauthErr("invalid_request", fmt.Sprintf("actor chain would be %d deep; at most %d allowed", depth, p.cfg.MaxActorChain))
	}
	// The account scope (the Cognito user API: GetUser, DeleteUser,
	// changing the user's attributes, password or TOTP) is the user's own,
	// never delegated: a service that a token was exchanged for acts for
	// the user toward other services, not on the user's account. What it
	// let read, the user's claims at /oauth2/userInfo, openid still does.
	have := sub.Scopes()
	if i := slices.Index(have, ScopeAdmin); i >= 0 {
		have = slices.Delete(have, i, i+1)
		if !slices.Contains(have, "openid") {
			have = append(have, "openid")
		}
	}
	scope := have
	if len(x.Scope) > 0 {
		for _, s := range x.Scope {
			if s == ScopeAdmin {
				return res, oauthErr("invalid_scope", "scope "+s+" is the user's own and is not delegated by an exchange")
			}
			if !contains(have, s) {
				return res, oauthErr("invalid_scope", "scope "+s+" is not in the subject token: an exchange can only narrow")
			}
		}
		scope = x.Scope
	}
	key, err := p.signer(ctx)
	if err != nil {
		return res, err
	}
	now := p.now()
	exp := now.Add(p.cfg.Tokens.Access).Unix()
	if sub.Expiry < exp {
		exp = sub.Expiry // never outlives the subject token
	}
	act := &token.Actor{Subject: x.Client.ClientID, ClientID: x.Client.ClientID, Act: sub.Act}
	claims := map[string]any{
		"iss": p.issuer, "sub": sub.Subject, "aud": x.Audience, "client_id": x.Client.ClientID, "token_use": token.UseAccess,
		"scope": strings.Join(scope, " "), "iat": now.Unix(), "exp": exp, "jti": uuid.NewString(), "act": act,
		"username": u.Username,
	}
	for k, v := range map[string]any{"origin_jti": sub.OriginJTI, "acr": sub.ACR} {
		if v != "" {
			claims[k] = v
		}
	}
	if sub.AuthTime != 0 {
		claims["auth_time"] = sub.AuthTime
	}
	if len(sub.AMR) > 0 {
		claims["amr"] = sub.AMR
	}
	if len(u.Groups) > 0 {
		claims["cognito:groups"] = u.Groups
	}
	at, err := token.Mint(key, claims)
	if err != nil {
		return res, internal(err)
	}
	res.Tokens = Tokens{AccessToken: at, TokenType: "Bearer", ExpiresIn: int(exp - now.Unix())}
	res.Scope = scope
	res.ActorChain = act.Chain()
	return res, nil
}

package userpool

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/token"
)

// Tokens are the tokens of one issuance.
type Tokens struct {
	IDToken      string `json:"id_token,omitempty"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
	// Scope is the access token's scope, space-separated.
	Scope string `json:"scope,omitempty"`
}

// Grant describes what an issuance is for.
type Grant struct {
	Client store.Client
	User   store.User
	// Scope is the granted scope list for the access token.
	Scope []string
	// IDToken asks for an ID token (API flows always; OAuth when openid).
	IDToken bool
	// Refresh asks for a new refresh-token family.
	Refresh  bool
	AuthTime time.Time
	AMR      []string
	Nonce    string
	// OriginJTI keeps the sign-in's id across refreshes; empty: new sign-in.
	OriginJTI string
}

// Issue mints the tokens of g and, when asked, stores a new refresh token.
func (p *Pool) Issue(ctx context.Context, g Grant) (Tokens, error) {
	key, err := p.signer(ctx)
	if err != nil {
		return Tokens{}, err
	}
	if g.OriginJTI == "" {
		g.OriginJTI = uuid.NewString()
	}
	now := p.now()
	t, rt, err := p.mint(ctx, p.st(), key, g, now)
	if err != nil {
		return Tokens{}, err
	}
	if err := p.markAfterSignOut(ctx, g.User, g.OriginJTI, now); err != nil {
		return Tokens{}, err
	}
	if g.Refresh {
		if err := p.st().CreateRefreshToken(ctx, rt); err != nil {
			return Tokens{}, internal(err)
		}
	}
	return t, nil
}

// afterSignOutKey names the record that sign-in originJTI of u stands
// after u's current sign-out: a sign-in made in the sign-out's own second
// but after it (markAfterSignOut), or the sign-in whose ChangePassword
// ended the user's other sessions (keepSignIn). A later sign-out changes
// the key, so that it ends such a sign-in too.
func afterSignOutKey(u store.User, originJTI string) string {
	return "after-sign-out/" + u.Sub + "/" + strconv.FormatInt(u.RevokedBefore.UnixMilli(), 10) + "/" + originJTI
}

// keepSignIn records, in tx, that sign-in originJTI of u (u as written
// with its new RevokedBefore) stands after that sign-out: its access and
// ID tokens pass signedOut and its refresh tokens refreshSignedOut. The
// record lasts as long as anything of the sign-in can: its refresh
// family, which never outlives the refresh lifetime from its sign-in
// (rotation does not extend it), and its JWTs.
func (p *Pool) keepSignIn(ctx context.Context, tx store.Counters, u store.User, originJTI string, now time.Time) error {
	if originJTI == "" {
		return nil
	}
	life := max(p.cfg.Tokens.Refresh, p.longestToken()) + time.Minute
	if _, err := tx.Incr(ctx, afterSignOutKey(u, originJTI), life, now); err != nil {
		return err
	}
	return nil
}

// markAfterSignOut records sign-in originJTI of u, issued at now, when now
// is in the second of u's sign-out and not before it.
func (p *Pool) markAfterSignOut(ctx context.Context, u store.User, originJTI string, now time.Time) error {
	rb := u.RevokedBefore
	if rb.IsZero() || now.Unix() != rb.Unix() || now.Before(rb) {
		return nil
	}
	if _, err := p.st().Incr(ctx, afterSignOutKey(u, originJTI), p.longestToken()+time.Minute, now); err != nil {
		return internal(err)
	}
	return nil
}

// signedOut reports whether a token of u issued at iat by sign-in
// originJTI predates u's last sign-out (RevokedBefore) and its sign-in
// does not stand after it. As iat is in whole seconds, it cannot tell
// before from after within the sign-out's own second: there a token is
// valid only if its sign-in was recorded by markAfterSignOut when issued.
// An earlier token is valid only if its sign-in was kept by the sign-out
// (keepSignIn: the sign-in that changed the password).
func (p *Pool) signedOut(ctx context.Context, u store.User, iat int64, originJTI string) (bool, error) {
	out, err := endedBySignOut(ctx, p.st(), u, iat > u.RevokedBefore.Unix(), originJTI, p.now())
	if err != nil {
		return true, internal(err)
	}
	return out, nil
}

// endedBySignOut reports whether something of sign-in originJTI of u (a
// token, a refresh token) is ended by u's last sign-out (RevokedBefore):
// not when it was made after the sign-out for certain (after), nor when
// its sign-in stands after the sign-out (afterSignOutKey).
func endedBySignOut(ctx context.Context, c store.Counters, u store.User, after bool, originJTI string, now time.Time) (bool, error) {
	switch {
	case u.RevokedBefore.IsZero() || after:
		return false, nil
	case originJTI == "":
		return true, nil
	}
	n, err := c.Count(ctx, afterSignOutKey(u, originJTI), now)
	if err != nil {
		return true, err
	}
	return n == 0, nil
}

// signer returns the pool's current signing key.
func (p *Pool) signer(ctx context.Context) (token.Signer, error) {
	key, err := p.Keys().Signer(ctx, p.cfg.ID)
	if err != nil {
		return nil, internal(err)
	}
	return key, nil
}

// mint signs the tokens of g, issued at now, with key and prepares (but
// does not store) the refresh token row when g.Refresh. It reads the
// user's groups (for the ID token's roles) from groups and touches the
// store no other way: inside a transaction, groups is the transaction, so
// that a mint never waits for a second connection while it holds one.
func (p *Pool) mint(ctx context.Context, groups store.Groups, key token.Signer, g Grant, now time.Time) (Tokens, store.RefreshToken, error) {
	var err error
	lt := p.cfg.Tokens
	iat := now.Unix()
	if g.OriginJTI == "" {
		g.OriginJTI = uuid.NewString()
	}
	eventID := uuid.NewString()
	u := g.User
	base := func(use string, life time.Duration) map[string]any {
		m := map[string]any{
			"iss": p.issuer, "sub": u.Sub, "token_use": use, "iat": iat, "exp": iat + int64(life/time.Second),
			"jti": uuid.NewString(), "origin_jti": g.OriginJTI, "event_id": eventID,
			"auth_time": g.AuthTime.Unix(),
		}
		if len(u.Groups) > 0 {
			m["cognito:groups"] = u.Groups
		}
		if len(g.AMR) > 0 {
			m["amr"] = g.AMR
		}
		return m
	}
	var out Tokens
	out.TokenType = "Bearer"
	out.ExpiresIn = int(lt.Access / time.Second)
	out.Scope = strings.Join(g.Scope, " ")

	at := base(token.UseAccess, lt.Access)
	// No aud, as Cognito's: client_id names the client, and an access
	// token with the client as its audience would pass an OpenID
	// Connect library's ID-token check (go-oidc reads neither typ nor
	// token_use).
	at["client_id"] = g.Client.ClientID
	at["username"] = u.Username
	at["scope"] = strings.Join(g.Scope, " ")
	if out.AccessToken, err = token.Mint(key, at); err != nil {
		return Tokens{}, store.RefreshToken{}, internal(err)
	}
	if g.IDToken {
		it := base(token.UseID, lt.ID)
		it["aud"] = g.Client.ClientID
		it["cognito:username"] = u.Username
		roles, preferred, err := p.groupRoles(ctx, groups, u)
		if err != nil {
			return Tokens{}, store.RefreshToken{}, internal(err)
		}
		if len(roles) > 0 {
			it["cognito:roles"] = roles
			if preferred != "" {
				it["cognito:preferred_role"] = preferred
			}
		}
		if u.Email != "" {
			it["email"] = u.Email
			it["email_verified"] = u.EmailVerified
		}
		for k, v := range u.Attributes {
			if _, taken := it[k]; taken || reservedClaim(k) {
				continue
			}
			if k == "phone_number_verified" {
				it[k] = v == "true"
				continue
			}
			it[k] = v
		}
		if g.Nonce != "" {
			it["nonce"] = g.Nonce
		}
		// The access token issued with it, for a relying party to check
		// (as Cognito's ID tokens carry it).
		if a, ok := key.(interface{ Algorithm() string }); ok {
			if h := token.AccessTokenHash(a.Algorithm(), out.AccessToken); h != "" {
				it["at_hash"] = h
			}
		}
		if out.IDToken, err = token.Mint(key, it); err != nil {
			return Tokens{}, store.RefreshToken{}, internal(err)
		}
	}
	var rt store.RefreshToken
	if g.Refresh {
		out.RefreshToken = randomToken(48)
		rt = store.RefreshToken{
			ID: hashID(out.RefreshToken), PoolID: p.cfg.ID, ClientID: g.Client.ClientID, Username: u.Username,
			Sub: u.Sub, FamilyID: g.OriginJTI, Scope: strings.Join(g.Scope, " "), AuthTime: g.AuthTime,
			AMR: g.AMR, OriginJTI: g.OriginJTI, CreatedAt: now, ExpiresAt: now.Add(lt.Refresh),
		}
	}
	return out, rt, nil
}

// protocolClaims are the claims writ sets itself (RFC 7519 §4.1, OpenID
// Connect Core §2 and §5.1, RFC 9068, Cognito's own) that a stored
// attribute of the same name must never supply.
var protocolClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"auth_time": true, "nonce": true, "acr": true, "amr": true, "azp": true, "at_hash": true, "c_hash": true,
	"sid": true, "token_use": true, "origin_jti": true, "event_id": true, "client_id": true, "scope": true,
	"username": true, "identities": true, "email_verified": true, "act": true, "may_act": true, "cnf": true,
}

// reservedClaim reports whether an attribute name is reserved for claims
// writ sets itself (the protocol claims and all of cognito:*), so that it
// is never copied from a user's attributes into a token or userInfo:
// attributes come from users, while cognito:preferred_role, for one,
// chooses an IAM role.
func reservedClaim(name string) bool {
	return protocolClaims[name] || strings.HasPrefix(name, "cognito:")
}

// replayed is what a retried refresh within the grace period gets back.
type replayed struct {
	Tokens Tokens `json:"t"`
}

// Refresh redeems a refresh token for client c. With rotation on, the
// token is single use: a successor is issued, a retry within the grace
// period (whose successor is still unused) gets the same tokens again,
// and any other reuse revokes the whole family. With a grace period of 0
// every reuse revokes it.
func (p *Pool) Refresh(ctx context.Context, c store.Client, refreshToken string) (Tokens, error) {
	id := hashID(refreshToken)
	now := p.now()
	key, err := p.signer(ctx)
	if err != nil {
		return Tokens{}, err
	}
	var out Tokens
	var revokeFamily, revokeOriginJTI string
	var userForAudit store.User
	err = p.st().InTx(ctx, func(tx store.Tx) error {
		out, revokeFamily, revokeOriginJTI = Tokens{}, "", ""
		rt, err := tx.GetRefreshToken(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return newErr(CodeNotAuthorized, "Invalid Refresh Token")
		}
		if err != nil {
			return internal(err)
		}
		if rt.PoolID != p.cfg.ID || rt.ClientID != c.ClientID {
			return newErr(CodeNotAuthorized, "Invalid Refresh Token")
		}
		if rt.Revoked {
			return newErr(CodeNotAuthorized, "Refresh Token has been revoked")
		}
		if !now.Before(rt.ExpiresAt) {
			return newErr(CodeNotAuthorized, "Refresh Token has expired")
		}
		u, err := tx.GetUser(ctx, rt.PoolID, rt.Username)
		if err != nil || u.Sub != rt.Sub {
			return newErr(CodeNotAuthorized, "Invalid Refresh Token")
		}
		userForAudit = u
		if !u.Enabled {
			return newErr(CodeNotAuthorized, "User is disabled.")
		}
		if out, err := refreshSignedOut(ctx, tx, u, rt, now); err != nil {
			return internal(err)
		} else if out {
			return newErr(CodeNotAuthorized, "Refresh Token has been revoked")
		}
		rotate := p.cfg.Tokens.RotateRefresh
		if !rt.UsedAt.IsZero() {
			// A rotated token presented again. A grace of 0 is none: even
			// at the very instant of its first use, it is reuse.
			succ, serr := tx.GetRefreshToken(ctx, rt.SuccessorID)
			grace := p.cfg.Tokens.RefreshGrace
			inGrace := grace > 0 && now.Sub(rt.UsedAt) <= grace && serr == nil && succ.UsedAt.IsZero() && !succ.Revoked
			if inGrace && len(rt.Replay) > 0 {
				plain, err := p.svc.replay.Open(rt.Replay, []byte(rt.ID))
				if err == nil {
					var r replayed
					if json.Unmarshal(plain, &r) == nil {
						out = r.Tokens
						return nil
					}
				}
			}
			revokeFamily, revokeOriginJTI = rt.FamilyID, rt.OriginJTI
			return nil
		}
		scope := strings.Fields(rt.Scope)
		g := Grant{Client: c, User: u, Scope: scope, IDToken: refreshGetsIDToken(scope), AuthTime: rt.AuthTime,
			AMR: rt.AMR, OriginJTI: rt.OriginJTI, Refresh: rotate}
		t, next, err := p.mint(ctx, tx, key, g, now)
		if err != nil {
			return err
		}
		if !rotate {
			out = t
			return nil
		}
		next.FamilyID = rt.FamilyID
		next.ExpiresAt = rt.ExpiresAt // rotation never extends the family's life
		if err := tx.CreateRefreshToken(ctx, next); err != nil {
			return internal(err)
		}
		plain, _ := json.Marshal(replayed{Tokens: t})
		if _, err := tx.UpdateRefreshToken(ctx, id, func(r *store.RefreshToken) error {
			r.UsedAt = now
			r.SuccessorID = next.ID
			r.Replay = p.svc.replay.Seal(plain, []byte(r.ID))
			return nil
		}); err != nil {
			return internal(err)
		}
		out = t
		return nil
	})
	if err != nil {
		p.record(ctx, auditFor("RefreshToken", c, userForAudit, err))
		return Tokens{}, err
	}
	if revokeFamily != "" {
		if _, err := p.st().RevokeRefreshFamily(ctx, revokeFamily); err != nil {
			return Tokens{}, internal(err)
		}
		// The sign-in is compromised: its access and ID tokens go too.
		if err := p.revokeOrigin(ctx, revokeOriginJTI); err != nil {
			return Tokens{}, err
		}
		err := newErr(CodeNotAuthorized, "Refresh Token has been revoked")
		p.record(ctx, auditFor("RefreshToken", c, userForAudit, &Error{Code: err.Code, Message: err.Message,
			Cause: errors.New("reuse of a rotated refresh token: family revoked")}))
		return Tokens{}, err
	}
	p.record(ctx, auditFor("RefreshToken", c, userForAudit, nil))
	return out, nil
}

// refreshSignedOut reports whether refresh token rt of u was created
// before u's last sign-out (RevokedBefore) and its sign-in (its family)
// does not stand after it. A sign-out marks the user's refresh tokens
// revoked too, except ChangePassword's, which keeps the calling sign-in's
// family (keepSignIn) and so ends the others by this check alone. A token
// created in the very millisecond of the sign-out is taken for one before
// it unless its sign-in was recorded as made after it (markAfterSignOut).
func refreshSignedOut(ctx context.Context, c store.Counters, u store.User, rt store.RefreshToken, now time.Time) (bool, error) {
	return endedBySignOut(ctx, c, u, rt.CreatedAt.After(u.RevokedBefore), rt.OriginJTI, now)
}

// refreshGetsIDToken reports whether refreshing a family of the given
// scope returns an ID token: a sign-in through the Cognito API (scope
// ScopeAdmin) always had one, an OAuth sign-in only when it was granted
// openid (OpenID Connect Core §12.2).
func refreshGetsIDToken(scope []string) bool {
	return contains(scope, "openid") || contains(scope, ScopeAdmin)
}

// RevokeRefresh revokes the family of a refresh token issued to client c
// (RFC 7009 semantics: an unknown token is not an error). Another client's
// token is UnauthorizedException, RevokeToken's error for a request that
// may not revoke.
func (p *Pool) RevokeRefresh(ctx context.Context, c store.Client, refreshToken string) error {
	rt, err := p.st().GetRefreshToken(ctx, hashID(refreshToken))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return internal(err)
	}
	if rt.ClientID != c.ClientID {
		return newErr(CodeUnauthorized, "The refresh token was not issued to this client.")
	}
	if _, err := p.st().RevokeRefreshFamily(ctx, rt.FamilyID); err != nil {
		return internal(err)
	}
	if err := p.revokeOrigin(ctx, rt.OriginJTI); err != nil {
		return err
	}
	p.record(ctx, auditEvent("RevokeToken", c.ClientID, rt.Username, rt.Sub, nil))
	return nil
}

// revokeOrigin marks every access token of one sign-in (its origin_jti) as
// revoked for online checks, until the longest token could expire.
func (p *Pool) revokeOrigin(ctx context.Context, originJTI string) error {
	if originJTI == "" {
		return nil
	}
	if _, err := p.st().Incr(ctx, "revoked-origin/"+originJTI, p.longestToken()+time.Minute, p.now()); err != nil {
		return internal(err)
	}
	return nil
}

// longestToken is the lifetime of the pool's longest-lived JWT.
func (p *Pool) longestToken() time.Duration {
	return max(p.cfg.Tokens.Access, p.cfg.Tokens.ID)
}

func (p *Pool) originRevoked(ctx context.Context, originJTI string) (bool, error) {
	if originJTI == "" {
		return false, nil
	}
	n, err := p.st().Count(ctx, "revoked-origin/"+originJTI, p.now())
	return n > 0, err
}

// AccessUser verifies an access token of this pool for the user's own
// account operations: signature, expiry, token use, the admin scope, and
// that the user exists, is enabled and has not signed out since.
func (p *Pool) AccessUser(ctx context.Context, raw string) (*token.Claims, store.User, error) {
	c, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, token.ErrExpired) {
			return nil, store.User{}, &Error{Code: CodeNotAuthorized, Message: "Access Token has expired", Cause: err}
		}
		return nil, store.User{}, &Error{Code: CodeNotAuthorized, Message: "Invalid Access Token", Cause: err}
	}
	if c.TokenUse != token.UseAccess { // an ID token, as Cognito answers it
		return nil, store.User{}, newErr(CodeNotAuthorized, "Invalid Access Token")
	}
	// A token with an actor (exchanged for a service) never acts on the
	// account, whatever its scope says.
	if !c.HasScope(ScopeAdmin) || c.Act != nil {
		return nil, store.User{}, newErr(CodeNotAuthorized, "Access Token does not have required scopes")
	}
	u, err := p.st().GetUser(ctx, p.cfg.ID, c.Username)
	if err != nil || u.Sub != c.Subject {
		return nil, store.User{}, newErr(CodeNotAuthorized, "Invalid Access Token")
	}
	if !u.Enabled {
		return nil, store.User{}, newErr(CodeNotAuthorized, "User is disabled.")
	}
	revoked, err := p.originRevoked(ctx, c.OriginJTI)
	if err != nil {
		return nil, store.User{}, internal(err)
	}
	if !revoked {
		if revoked, err = p.signedOut(ctx, u, c.IssuedAt, c.OriginJTI); err != nil {
			return nil, store.User{}, err
		}
	}
	if revoked {
		return nil, store.User{}, newErr(CodeNotAuthorized, "Access Token has been revoked")
	}
	return c, u, nil
}

// PoolForToken finds the pool that issued an access token by its issuer.
func (s *Service) PoolForToken(raw string) (*Pool, bool) {
	iss, ok := token.UnverifiedIssuer(raw)
	if !ok {
		return nil, false
	}
	for _, p := range s.order {
		if p.issuer == iss {
			return p, true
		}
	}
	return nil, false
}

// RefreshOwner returns the username and sub a refresh token was issued to
// (for SECRET_HASH checks); ok is false when the token is unknown.
func (p *Pool) RefreshOwner(ctx context.Context, refreshToken string) (username, sub string, ok bool) {
	rt, err := p.st().GetRefreshToken(ctx, hashID(refreshToken))
	if err != nil || rt.PoolID != p.cfg.ID {
		return "", "", false
	}
	return rt.Username, rt.Sub, true
}

// CheckSecretHash verifies SECRET_HASH for a confidential client, accepting
// a hash over the username or the sub (as Cognito does for refresh).
func (p *Pool) CheckSecretHash(c store.Client, secretHash string, names ...string) error {
	var err error
	for _, n := range names {
		if err = p.checkSecretHash(c, n, secretHash); err == nil {
			return nil
		}
	}
	return err
}

// SessionPool finds the pool of a live challenge session.
func (s *Service) SessionPool(ctx context.Context, raw string) (*Pool, bool) {
	if raw == "" || len(raw) > 1024 {
		return nil, false
	}
	sess, err := s.deps.Store.GetSession(ctx, hashID(raw), s.deps.Now())
	if err != nil {
		return nil, false
	}
	p, ok := s.pools[sess.PoolID]
	return p, ok
}

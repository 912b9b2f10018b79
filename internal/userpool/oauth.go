package userpool

import (
	"context"
	"errors"
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
		"iss": p.issuer, "sub": c.ClientID, "client_id": c.ClientID, "token_use": token.UseAccess, // no aud: see mint
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

// Introspect reports to the authenticated client caller whether a token
// of this pool is active, and its claims: JWTs are verified and checked
// for revocation, refresh tokens looked up. Any client may introspect an
// access token (resource servers must), but a refresh token or an ID
// token only its own client: for any other it is inactive (RFC 7662 §4).
func (p *Pool) Introspect(ctx context.Context, caller store.Client, raw string) Introspection {
	inactive := Introspection{"active": false}
	if strings.Count(raw, ".") == 2 {
		c, err := p.verifier.Verify(ctx, raw)
		if err != nil {
			return inactive
		}
		if c.TokenUse == token.UseID && !c.Audience.Contains(caller.ClientID) {
			return inactive
		}
		if revoked, err := p.originRevoked(ctx, c.OriginJTI); err != nil || revoked {
			return inactive
		}
		if c.Subject != c.ClientID {
			u, err := p.st().GetUserBySub(ctx, c.Subject)
			if err != nil || !u.Enabled {
				return inactive
			}
			if out, err := p.signedOut(ctx, u, c.IssuedAt, c.OriginJTI); err != nil || out {
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
	if err != nil || rt.PoolID != p.cfg.ID || rt.ClientID != caller.ClientID || rt.Revoked || !p.now().Before(rt.ExpiresAt) || !rt.UsedAt.IsZero() {
		return inactive
	}
	// Refused by Refresh since a sign-out that did not mark it revoked
	// (ChangePassword's, which keeps only the calling sign-in).
	u, err := p.st().GetUser(ctx, rt.PoolID, rt.Username)
	if err != nil || u.Sub != rt.Sub || !u.Enabled {
		return inactive
	}
	if out, err := refreshSignedOut(ctx, p.st(), u, rt, p.now()); err != nil || out {
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
	if c.TokenUse != token.UseAccess {
		// An ID token is no credential for a resource (RFC 6750 §3.1).
		return nil, oauthErr("invalid_token", "the token is not an access token")
	}
	if !(c.HasScope("openid") || c.HasScope(ScopeAdmin)) {
		return nil, oauthErr("insufficient_scope", "the access token does not allow userInfo")
	}
	u, err := p.st().GetUserBySub(ctx, c.Subject)
	if err != nil || u.PoolID != p.cfg.ID || !u.Enabled {
		return nil, oauthErr("invalid_token", "the access token is invalid")
	}
	if revoked, err := p.originRevoked(ctx, c.OriginJTI); err != nil || revoked {
		return nil, oauthErr("invalid_token", "the access token has been revoked")
	}
	if out, err := p.signedOut(ctx, u, c.IssuedAt, c.OriginJTI); err != nil || out {
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
			if _, taken := out[k]; !taken && !reservedClaim(k) {
				out[k] = v
			}
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

// AdminCreateUser creates a user with a temporary password (generated and
// mailed when empty, unless suppress) in FORCE_CHANGE_PASSWORD.
func (p *Pool) AdminCreateUser(ctx context.Context, username, tempPassword string, attrs []Attribute, suppress bool) (store.User, error) {
	if err := validUsername(username); err != nil {
		return store.User{}, err
	}
	if err := p.validateAdminAttrs(attrs); err != nil {
		return store.User{}, err
	}
	tempPassword, err := p.temporaryPassword(tempPassword)
	if err != nil {
		return store.User{}, err
	}
	now := p.now()
	u := store.User{PoolID: p.cfg.ID, Username: username, Sub: uuid.NewString(), Attributes: map[string]string{},
		Status: store.StatusForceChangePassword, Enabled: true, PasswordHash: HashPassword(tempPassword, p.svc.deps.Argon2),
		CreatedAt: now, UpdatedAt: now}
	setAttrs(&u, attrs)
	err = p.st().InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if suppress {
			return nil
		}
		return p.queueInvitation(ctx, tx, u, tempPassword)
	})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, newErr(CodeUsernameExists, "User account already exists")
	}
	if err != nil {
		return store.User{}, internal(err)
	}
	p.mailQueued()
	p.record(ctx, audit.Event{Action: "AdminCreateUser", Outcome: audit.Allow, Username: username, Sub: u.Sub})
	return u, nil
}

// AdminResendInvitation is AdminCreateUser with MessageAction RESEND: it
// gives an existing user still in FORCE_CHANGE_PASSWORD a new temporary
// password (tempPassword, generated when empty), which replaces the old
// one, and mails the invitation again. UserNotFoundException when the user
// does not exist; UnsupportedUserStateException, changing nothing, when it
// has left FORCE_CHANGE_PASSWORD.
func (p *Pool) AdminResendInvitation(ctx context.Context, username, tempPassword string) (store.User, error) {
	tempPassword, err := p.temporaryPassword(tempPassword)
	if err != nil {
		return store.User{}, err
	}
	hash := HashPassword(tempPassword, p.svc.deps.Argon2)
	u, err := p.adminUpdate(ctx, "AdminCreateUser", username, false, func(u *store.User) error {
		if u.Status != store.StatusForceChangePassword {
			return newErr(CodeUnsupportedUserState, "Resend not possible. "+username+" status is "+u.Status)
		}
		u.PasswordHash = hash
		return nil
	}, func(tx store.Tx, u store.User) error { return p.queueInvitation(ctx, tx, u, tempPassword) })
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// temporaryPassword checks an administrator's temporary password against
// the pool's policy, or generates one when it is empty.
func (p *Pool) temporaryPassword(pw string) (string, error) {
	if pw == "" {
		return "Tmp-" + randomToken(12) + "9a", nil
	}
	if err := checkPasswordInput("temporaryPassword", pw); err != nil {
		return "", err
	}
	if err := CheckPasswordPolicy(p.cfg.PasswordPolicy, pw); err != nil {
		return "", err
	}
	return pw, nil
}

// queueInvitation queues, in tx, the mail telling u its username and
// temporary password (nothing when u has no email address).
func (p *Pool) queueInvitation(ctx context.Context, tx store.Outbox, u store.User, tempPassword string) error {
	return p.queueMail(ctx, tx, u.Email, "Your temporary password",
		"Your username is "+u.Username+" and your temporary password is "+tempPassword)
}

// AdminGetUser returns a user (UserNotFoundException when absent). It only
// reads: UserLastModifiedDate stays as it is.
func (p *Pool) AdminGetUser(ctx context.Context, username string) (store.User, error) {
	u, err := p.st().GetUser(ctx, p.cfg.ID, username)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, newErr(CodeUserNotFound, "User does not exist.")
	}
	if err != nil {
		return store.User{}, internal(err)
	}
	return u, nil
}

// AdminUpdate applies fn to a user (UserNotFoundException when absent).
func (p *Pool) AdminUpdate(ctx context.Context, action, username string, fn func(*store.User) error) (store.User, error) {
	return p.adminUpdate(ctx, action, username, false, fn, nil)
}

// adminUpdate is AdminUpdate; with signOut, the same transaction also
// ends every session of the user (signOutTx).
//
// also, when set, runs in the same transaction on the user as written:
// the write that belongs with the change (a code and its mail), so that
// neither is made without the other. Mail it queued is sent once the
// transaction committed.
func (p *Pool) adminUpdate(ctx context.Context, action, username string, signOut bool, fn func(*store.User) error,
	also func(tx store.Tx, u store.User) error) (store.User, error) {
	change := func(x *store.User) error {
		if err := fn(x); err != nil {
			return err
		}
		x.UpdatedAt = p.now()
		return nil
	}
	now := p.now()
	var u store.User
	err := p.st().InTx(ctx, func(tx store.Tx) error {
		var err error
		if signOut {
			u, err = p.signOutTx(ctx, tx, username, "", now, change)
		} else {
			u, err = tx.UpdateUser(ctx, p.cfg.ID, username, change)
		}
		if err != nil || also == nil {
			return err
		}
		return also(tx, u)
	})
	if err != nil {
		return store.User{}, storeErr(err, errUserNotFound)
	}
	if also != nil {
		p.mailQueued() // only also queues mail
	}
	p.record(ctx, audit.Event{Action: action, Outcome: audit.Allow, Username: username, Sub: u.Sub})
	return u, nil
}

func errUserNotFound() *Error { return newErr(CodeUserNotFound, "User does not exist.") }

// storeErr is the error an operation whose store write failed with err
// answers: notFound's for store.ErrNotFound, an *Error the write's change
// returned, or an internal error.
func storeErr(err error, notFound func() *Error) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound()
	}
	var ue *Error
	if errors.As(err, &ue) {
		return ue
	}
	return internal(err)
}

// AdminDisableUser disables a user and revokes all of its tokens, as
// Cognito's AdminDisableUser does: its refresh tokens are revoked and its
// access and ID tokens issued so far are refused in online checks (as
// after AdminUserGlobalSignOut), so AdminEnableUser does not bring them
// back.
func (p *Pool) AdminDisableUser(ctx context.Context, username string) error {
	_, err := p.adminUpdate(ctx, "AdminDisableUser", username, true, func(u *store.User) error {
		u.Enabled = false
		return nil
	}, nil)
	return err
}

// AdminSetPassword sets a user's password, permanent or temporary, and
// ends every session of the user in the same transaction, as
// AdminUserGlobalSignOut does: whoever knew the old password is out.
// (`writ users set-password` calls this through AdminSetUserPassword.)
func (p *Pool) AdminSetPassword(ctx context.Context, username, password string, permanent bool) error {
	if err := checkPasswordInput("password", password); err != nil {
		return err
	}
	if err := CheckPasswordPolicy(p.cfg.PasswordPolicy, password); err != nil {
		return err
	}
	hash := HashPassword(password, p.svc.deps.Argon2)
	u, err := p.adminUpdate(ctx, "AdminSetUserPassword", username, true, func(u *store.User) error {
		u.PasswordHash = hash
		u.Status = store.StatusForceChangePassword
		if permanent {
			u.Status = store.StatusConfirmed
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	p.recordSignOut(ctx, u, "password set by AdminSetUserPassword")
	return nil
}

// AdminResetPassword requires a reset and mails a code. It ends every
// session of the user in the same transaction, as AdminUserGlobalSignOut
// does: a reset is asked for when the password is no longer trusted.
func (p *Pool) AdminResetPassword(ctx context.Context, username string) error {
	u, err := p.adminUpdate(ctx, "AdminResetUserPassword", username, true, func(u *store.User) error {
		// The reset code goes to a verified address only, as
		// ForgotPassword's does: an address someone set without proving
		// it would get the account.
		if u.Email == "" || !u.EmailVerified {
			return newErr(CodeInvalidParameter, "Cannot reset password for the user as there is no registered/verified email or phone_number")
		}
		u.Status = store.StatusResetRequired
		return nil
	}, func(tx store.Tx, u store.User) error {
		return p.putCode(ctx, tx, "reset", "", u, resetLifetime, "Your password reset code", "Your password reset code is %s")
	})
	if err != nil {
		return err
	}
	p.recordSignOut(ctx, u, "password reset by AdminResetUserPassword")
	return nil
}

// DeleteUser deletes a user (AdminDeleteUser) and revokes its refresh
// tokens.
func (s *Service) DeleteUser(ctx context.Context, p *Pool, username string) error {
	return s.deleteUser(ctx, p, "AdminDeleteUser", username)
}

// deleteUser deletes a user, its refresh tokens, its pending codes and
// its lockout and code counters (so that none serves or locks a new user
// of the same name), recording action.
func (s *Service) deleteUser(ctx context.Context, p *Pool, action, username string) error {
	if _, err := s.deps.Store.RevokeUserRefreshTokens(ctx, p.cfg.ID, username); err != nil {
		return internal(err)
	}
	err := s.deps.Store.DeleteUser(ctx, p.cfg.ID, username)
	if errors.Is(err, store.ErrNotFound) {
		return newErr(CodeUserNotFound, "User does not exist.")
	}
	if err != nil {
		return internal(err)
	}
	for _, purpose := range codePurposes {
		if err := s.deps.Store.DeleteCode(ctx, p.codeKey(purpose, username)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return internal(err)
		}
	}
	// Nor do its counters: a new user of the same name starts unlocked.
	counters := []string{p.userLockKey(username)}
	for _, purpose := range codePurposes {
		counters = append(counters, p.codeSendKey(purpose, username), p.codeGuessKey(purpose, username))
	}
	for _, key := range counters {
		if err := s.deps.Store.ResetCounter(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return internal(err)
		}
	}
	p.record(ctx, audit.Event{Action: action, Outcome: audit.Allow, Username: username})
	return nil
}

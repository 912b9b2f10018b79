package userpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
)

// Challenge names.
const (
	ChallengeSoftwareTokenMFA = "SOFTWARE_TOKEN_MFA"
	ChallengeMFASetup         = "MFA_SETUP"
	ChallengeNewPassword      = "NEW_PASSWORD_REQUIRED"
)

// Result is the outcome of an authentication step: tokens, or the next
// challenge with its single-use session.
type Result struct {
	Tokens    *Tokens
	Challenge string
	Session   string
	Params    map[string]string
	// User is the authenticated (or challenged) user.
	User store.User
	// Done is set when a hosted-page sign-in (WebPasswordAuth) succeeded:
	// no tokens are minted; AuthTime and AMR describe the authentication.
	Done     bool
	AuthTime time.Time
	AMR      []string
}

// authState is the server-side state behind a challenge session.
type authState struct {
	Challenge string   `json:"c"`
	Username  string   `json:"u"`
	Sub       string   `json:"s"`
	AuthTime  int64    `json:"t"`
	AMR       []string `json:"a"`
	Attempts  int      `json:"n"`
	// Scope is carried for OAuth-driven sign-ins (hosted pages).
	Scope []string `json:"sc,omitempty"`
	// Web marks a hosted-page sign-in: it ends authenticated, not with tokens.
	Web bool `json:"w,omitempty"`
}

const maxChallengeAttempts = 3

// Session kinds.
const (
	kindAuth = "auth"
)

func auditEvent(action, clientID, username, sub string, err error) audit.Event {
	e := audit.Event{Action: action, ClientID: clientID, Username: username, Sub: sub, Outcome: audit.Allow}
	if err != nil {
		e.Outcome = audit.Deny
		var ue *Error
		if errors.As(err, &ue) {
			e.Reason = ue.Code + ": " + ue.Message
			if ue.Cause != nil {
				e.Reason += " (" + ue.Cause.Error() + ")"
			}
			if ue.Code == CodeInternal {
				e.Outcome = audit.Error
			}
		} else {
			e.Outcome, e.Reason = audit.Error, err.Error()
		}
	}
	return e
}

func auditFor(action string, c store.Client, u store.User, err error) audit.Event {
	return auditEvent(action, c.ClientID, u.Username, u.Sub, err)
}

// signIn says how a password sign-in was asked for.
type signIn struct {
	// src is the caller's address, for the per-source throttle.
	src string
	// admin marks the admin flow, which has no per-source throttle.
	admin bool
	// web marks the hosted pages (no SECRET_HASH, ends with Result.Done).
	web bool
}

// PasswordAuth runs USER_PASSWORD_AUTH for client c from source address
// src: the per-source throttle and the per-user lockout apply.
func (p *Pool) PasswordAuth(ctx context.Context, c store.Client, username, password, secretHash, src string) (Result, error) {
	return p.passwordAuthLogged(ctx, "InitiateAuth", c, username, password, secretHash, signIn{src: src})
}

// AdminPasswordAuth runs ADMIN_USER_PASSWORD_AUTH (AdminInitiateAuth) for
// client c. The caller is an authorized administrator, a server whose
// address says nothing about the user signing in, so only the per-user
// lockout applies, as in Cognito: a per-source throttle would let failures
// for some users lock every user out of the admin flow.
func (p *Pool) AdminPasswordAuth(ctx context.Context, c store.Client, username, password, secretHash string) (Result, error) {
	return p.passwordAuthLogged(ctx, "AdminInitiateAuth", c, username, password, secretHash, signIn{admin: true})
}

// WebPasswordAuth is PasswordAuth for the hosted pages: the same checks,
// challenges and throttling, ending with Result.Done instead of tokens.
func (p *Pool) WebPasswordAuth(ctx context.Context, c store.Client, username, password, src string) (Result, error) {
	return p.passwordAuthLogged(ctx, "InitiateAuth", c, username, password, "", signIn{src: src, web: true})
}

func (p *Pool) passwordAuthLogged(ctx context.Context, action string, c store.Client, username, password, secretHash string, how signIn) (Result, error) {
	if err := usernameInput(username); err != nil {
		return Result{}, err
	}
	r, err := p.passwordAuth(ctx, c, username, password, secretHash, how)
	ev := auditFor(action, c, r.User, err)
	if r.User.Username == "" {
		ev.Username = username
	}
	if err == nil && r.Challenge != "" {
		ev.Reason = "challenge " + r.Challenge
	}
	p.record(ctx, ev)
	return r, err
}

func (p *Pool) passwordAuth(ctx context.Context, c store.Client, username, password, secretHash string, how signIn) (Result, error) {
	if username == "" || password == "" {
		return Result{}, newErr(CodeInvalidParameter, "Missing required parameter USERNAME or PASSWORD")
	}
	if !how.web {
		if err := p.checkSecretHash(c, username, secretHash); err != nil {
			return Result{}, err
		}
	}
	now := p.now()
	var lim *failureLimit // AdminInitiateAuth's source is the admin's server: not limited
	if !how.admin {
		lim = p.sourceFailures("login-src", how.src, p.svc.sourceLimit, p.cfg.Lockout.Window,
			"Too many failed sign-in attempts from this address; try again later.")
	}
	if err := lim.check(ctx); err != nil {
		return Result{}, err
	}
	if err := p.checkLockout(ctx, username); err != nil {
		// Burn the same time as a real check so lockout is not a timing oracle.
		VerifyPassword(p.svc.dummyHash, password)
		return Result{}, err
	}
	fail := func(cause string) (Result, error) {
		if err := lim.fail(ctx); err != nil {
			return Result{}, err
		}
		if err := p.countFailure(ctx, username); err != nil {
			return Result{}, err
		}
		e := errBadCredentials()
		e.Cause = errors.New(cause)
		return Result{}, e
	}
	u, err := p.st().GetUser(ctx, p.cfg.ID, username)
	if errors.Is(err, store.ErrNotFound) {
		VerifyPassword(p.svc.dummyHash, password)
		return fail("unknown user")
	}
	if err != nil {
		return Result{}, internal(err)
	}
	if u.PasswordHash == "" || !VerifyPassword(u.PasswordHash, password) {
		return fail("wrong password")
	}
	// The failure counter is reset only when the sign-in completes
	// (finish): a right password alone must not wipe out wrong MFA codes.
	if !u.Enabled {
		return Result{User: u}, newErr(CodeNotAuthorized, "User is disabled.")
	}
	switch u.Status {
	case store.StatusUnconfirmed:
		return Result{User: u}, newErr(CodeUserNotConfirmed, "User is not confirmed.")
	case store.StatusResetRequired:
		return Result{User: u}, newErr("PasswordResetRequiredException", "Password reset required for the user")
	}
	st := authState{Username: u.Username, Sub: u.Sub, AuthTime: now.Unix(), AMR: []string{"pwd"}, Web: how.web}
	if u.Status == store.StatusForceChangePassword {
		return p.challenge(ctx, c, u, st, ChallengeNewPassword)
	}
	return p.afterPassword(ctx, c, u, st)
}

// afterPassword decides the MFA step once the password is known good.
func (p *Pool) afterPassword(ctx context.Context, c store.Client, u store.User, st authState) (Result, error) {
	switch {
	case p.cfg.MFA != "off" && u.TOTPEnabled && len(u.TOTPSecret) > 0:
		return p.challenge(ctx, c, u, st, ChallengeSoftwareTokenMFA)
	case p.cfg.MFA == "required":
		return p.challenge(ctx, c, u, st, ChallengeMFASetup)
	}
	return p.finish(ctx, c, u, st)
}

// userLockKey names the counter of a user's failed sign-in steps (wrong
// passwords and wrong MFA codes) within the pool's lockout window.
func (p *Pool) userLockKey(username string) string {
	return "login-user/" + p.cfg.ID + "/" + username
}

// checkLockout refuses a user with lockout.max_failures failed sign-in
// steps within the window, as Cognito does after five wrong passwords or
// MFA codes.
func (p *Pool) checkLockout(ctx context.Context, username string) error {
	n, err := p.st().Count(ctx, p.userLockKey(username), p.now())
	if err != nil {
		return internal(err)
	}
	if p.cfg.Lockout.MaxFailures > 0 && n >= p.cfg.Lockout.MaxFailures {
		return &Error{Code: CodeNotAuthorized, Message: "Password attempts exceeded", Cause: errors.New("user locked out")}
	}
	return nil
}

// countFailure counts a failed sign-in step of a user toward lockout.
func (p *Pool) countFailure(ctx context.Context, username string) error {
	if _, err := p.st().Incr(ctx, p.userLockKey(username), p.cfg.Lockout.Window, p.now()); err != nil {
		return internal(err)
	}
	return nil
}

// finish completes a sign-in whose every step succeeded: it clears the
// user's failure counter and issues the tokens (or, for the hosted pages,
// reports Done).
func (p *Pool) finish(ctx context.Context, c store.Client, u store.User, st authState) (Result, error) {
	if err := p.st().ResetCounter(ctx, p.userLockKey(u.Username)); err != nil {
		return Result{}, internal(err)
	}
	if st.Web {
		return Result{Done: true, User: u, AuthTime: time.Unix(st.AuthTime, 0), AMR: st.AMR}, nil
	}
	scope := st.Scope
	if scope == nil {
		scope = []string{ScopeAdmin}
	}
	t, err := p.Issue(ctx, Grant{Client: c, User: u, Scope: scope, IDToken: true,
		Refresh: HasFlow(c, "refresh_token"), AuthTime: time.Unix(st.AuthTime, 0), AMR: st.AMR})
	if err != nil {
		return Result{}, err
	}
	return Result{Tokens: &t, User: u}, nil
}

func (p *Pool) challenge(ctx context.Context, c store.Client, u store.User, st authState, name string) (Result, error) {
	st.Challenge = name
	sess, err := p.newSession(ctx, c, st)
	if err != nil {
		return Result{}, err
	}
	params := map[string]string{"USER_ID_FOR_SRP": u.Username}
	switch name {
	case ChallengeMFASetup:
		params["MFAS_CAN_SETUP"] = `["SOFTWARE_TOKEN_MFA"]`
	case ChallengeSoftwareTokenMFA:
		params["FRIENDLY_DEVICE_NAME"] = "TOTP"
	case ChallengeNewPassword:
		attrs := map[string]string{}
		if u.Email != "" {
			attrs["email"] = u.Email
		}
		for k, v := range u.Attributes {
			attrs[k] = v
		}
		b, _ := json.Marshal(attrs)
		params["userAttributes"] = string(b)
		params["requiredAttributes"] = "[]"
	}
	return Result{Challenge: name, Session: sess, Params: params, User: u}, nil
}

func (p *Pool) newSession(ctx context.Context, c store.Client, st authState) (string, error) {
	raw := randomToken(48)
	if err := p.putSession(ctx, raw, c, st); err != nil {
		return "", err
	}
	return raw, nil
}

func (p *Pool) putSession(ctx context.Context, raw string, c store.Client, st authState) error {
	data, _ := json.Marshal(st)
	now := p.now()
	err := p.st().CreateSession(ctx, store.Session{ID: hashID(raw), Kind: kindAuth, PoolID: p.cfg.ID,
		ClientID: c.ClientID, Username: st.Username, Data: data, CreatedAt: now, ExpiresAt: now.Add(p.cfg.Tokens.Session)})
	if err != nil {
		return internal(err)
	}
	return nil
}

// takeSession consumes a challenge session of client c expecting one of
// the challenges. The session is checked before it is consumed, so a
// request for another client or challenge leaves it usable.
func (p *Pool) takeSession(ctx context.Context, c store.Client, raw string, challenges ...string) (authState, error) {
	if _, err := p.peekSession(ctx, c, raw, challenges...); err != nil {
		return authState{}, err
	}
	return p.consumeSession(ctx, c, raw, challenges...)
}

// peekSession returns the state of a live challenge session of client c
// expecting one of the challenges, without consuming it.
func (p *Pool) peekSession(ctx context.Context, c store.Client, raw string, challenges ...string) (authState, error) {
	if raw == "" || len(raw) > 1024 {
		return authState{}, errBadSession()
	}
	s, err := p.st().GetSession(ctx, hashID(raw), p.now())
	if errors.Is(err, store.ErrNotFound) {
		return authState{}, errBadSession()
	}
	if err != nil {
		return authState{}, internal(err)
	}
	return p.sessionState(s, c, challenges)
}

// consumeSession consumes a session found by peekSession, checking it
// again (another request may have consumed it in between).
func (p *Pool) consumeSession(ctx context.Context, c store.Client, raw string, challenges ...string) (authState, error) {
	s, err := p.st().ConsumeSession(ctx, hashID(raw), p.now())
	if errors.Is(err, store.ErrNotFound) {
		return authState{}, errBadSession()
	}
	if err != nil {
		return authState{}, internal(err)
	}
	return p.sessionState(s, c, challenges)
}

// sessionState decodes s when it is a challenge session of this pool and
// client c expecting one of the challenges.
func (p *Pool) sessionState(s store.Session, c store.Client, challenges []string) (authState, error) {
	var st authState
	if s.Kind != kindAuth || s.PoolID != p.cfg.ID || s.ClientID != c.ClientID || json.Unmarshal(s.Data, &st) != nil {
		return authState{}, errBadSession()
	}
	for _, ch := range challenges {
		if st.Challenge == ch {
			return st, nil
		}
	}
	return authState{}, errBadSession()
}

// Respond answers a challenge (RespondToAuthChallenge) from src, the
// caller's address (for the per-source limit on the codes a changed email
// address mails).
func (p *Pool) Respond(ctx context.Context, c store.Client, challenge, session string, responses map[string]string, src string) (Result, error) {
	return p.respondLogged(ctx, "RespondToAuthChallenge", c, challenge, session, responses, src)
}

// AdminRespond answers a challenge for an authorized administrator
// (AdminRespondToAuthChallenge), with the semantics of Respond: the same
// challenges, single-use sessions bound to client c, SECRET_HASH for a
// confidential client, and wrong MFA codes counting toward the user's
// lockout.
func (p *Pool) AdminRespond(ctx context.Context, c store.Client, challenge, session string, responses map[string]string) (Result, error) {
	return p.respondLogged(ctx, "AdminRespondToAuthChallenge", c, challenge, session, responses, "") // the admin's server: no per-source limit
}

func (p *Pool) respondLogged(ctx context.Context, action string, c store.Client, challenge, session string, responses map[string]string, src string) (Result, error) {
	if err := usernameInput(responses["USERNAME"]); err != nil {
		return Result{}, err
	}
	r, err := p.respond(ctx, c, challenge, session, responses, src)
	ev := auditFor(action, c, r.User, err)
	if ev.Username == "" {
		ev.Username = responses["USERNAME"]
	}
	ev.Reason = challenge + ": " + ev.Reason
	p.record(ctx, ev)
	return r, err
}

// src is the caller's address, for the per-source limit on codes a
// changed email address mails ("" for none).
func (p *Pool) respond(ctx context.Context, c store.Client, challenge, session string, responses map[string]string, src string) (Result, error) {
	// The answer each challenge needs; one left out is a malformed
	// request: refused before the session is spent, and no wrong code
	// toward the user's lockout.
	member := ""
	switch challenge {
	case ChallengeSoftwareTokenMFA:
		member = "SOFTWARE_TOKEN_MFA_CODE"
	case ChallengeNewPassword:
		member = "NEW_PASSWORD"
	case ChallengeMFASetup:
	default:
		return Result{}, newErr(CodeInvalidParameter, fmt.Sprintf("Unsupported challenge %q", challenge))
	}
	if member != "" && responses[member] == "" {
		return Result{}, newErr(CodeInvalidParameter, "Missing required parameter "+member)
	}
	want := challenge
	if challenge == ChallengeMFASetup {
		want = "MFA_SETUP_VERIFIED"
	}
	// A request refused before the challenge is answered (another client,
	// challenge or user, a wrong SECRET_HASH) leaves the session usable.
	st, err := p.peekSession(ctx, c, session, want)
	if err != nil {
		return Result{}, err
	}
	if !st.Web {
		if err := p.checkSecretHash(c, responses["USERNAME"], responses["SECRET_HASH"]); err != nil {
			return Result{}, err
		}
	}
	if un := responses["USERNAME"]; un != "" && un != st.Username {
		return Result{}, errBadSession()
	}
	if st, err = p.consumeSession(ctx, c, session, want); err != nil {
		return Result{}, err
	}
	u, err := p.st().GetUser(ctx, p.cfg.ID, st.Username)
	if err != nil || u.Sub != st.Sub || !u.Enabled {
		return Result{}, errBadSession()
	}
	switch challenge {
	case ChallengeSoftwareTokenMFA:
		// Wrong codes count toward the user's lockout like wrong
		// passwords, across sign-ins: a locked-out user's session is spent.
		if err := p.checkLockout(ctx, u.Username); err != nil {
			return Result{User: u}, err
		}
		code := responses["SOFTWARE_TOKEN_MFA_CODE"]
		if err := p.checkTOTP(ctx, u, u.TOTPSecret, code); err != nil {
			var ue *Error
			if errors.As(err, &ue) && ue.Code == CodeCodeMismatch {
				if cerr := p.countFailure(ctx, u.Username); cerr != nil {
					return Result{User: u}, cerr
				}
			}
			if st.Attempts+1 < maxChallengeAttempts {
				st.Attempts++
				if perr := p.putSession(ctx, session, c, st); perr != nil {
					return Result{}, perr
				}
			}
			return Result{User: u}, err
		}
		st.AMR = append(st.AMR, "otp", "mfa")
		return p.finish(ctx, c, u, st)
	case ChallengeNewPassword:
		pw := responses["NEW_PASSWORD"]
		var attrs []Attribute
		for k, v := range responses {
			if name, ok := cutPrefix(k, "userAttributes."); ok {
				attrs = append(attrs, Attribute{Name: name, Value: v})
			}
		}
		// The user sets attributes here as with UpdateUserAttributes, under
		// the same rules (a changed address's code counts toward the limit
		// on codes); a refusal changes nothing and keeps the session.
		err := p.validateAttrs(attrs)
		if err == nil {
			err = CheckPasswordPolicy(p.cfg.PasswordPolicy, pw)
		}
		if err == nil {
			err = p.countEmailChange(ctx, u, attrs, src)
		}
		if err != nil {
			if perr := p.putSession(ctx, session, c, st); perr != nil {
				return Result{}, perr
			}
			return Result{User: u}, err
		}
		hash := HashPassword(pw, p.svc.deps.Argon2)
		old := u
		err = p.st().InTx(ctx, func(tx store.Tx) error {
			var err error
			u, err = tx.UpdateUser(ctx, p.cfg.ID, u.Username, func(x *store.User) error {
				x.PasswordHash = hash
				x.Status = store.StatusConfirmed
				setAttrs(x, attrs)
				x.UpdatedAt = p.now()
				return nil
			})
			if err != nil {
				return err
			}
			// A changed address is unverified: its code goes with the
			// change, as UpdateUserAttributes's does.
			_, err = p.verifyChangedEmail(ctx, tx, old, u)
			return err
		})
		if err != nil {
			return Result{}, internal(err)
		}
		p.mailQueued()
		return p.afterPassword(ctx, c, u, st)
	default: // MFA_SETUP, with the session from VerifySoftwareToken
		st.AMR = append(st.AMR, "otp", "mfa")
		return p.finish(ctx, c, u, st)
	}
}

// checkTOTP verifies code against the sealed secret and marks its time
// step used for that secret, so the same code is refused for the rest of
// its window.
func (p *Pool) checkTOTP(ctx context.Context, u store.User, sealed []byte, code string) error {
	if len(sealed) == 0 {
		return newErr(CodeSoftwareTokenNotFound, "Software token MFA is not set up for the user.")
	}
	secret, err := p.openTOTP(u.Sub, sealed)
	if err != nil {
		return internal(err)
	}
	now := p.now()
	step, ok := matchTOTP(secret, code, now)
	if !ok {
		return newErr(CodeCodeMismatch, "Invalid code received for user")
	}
	// Replay is per secret: a code of a new secret being enrolled is not
	// a replay of the old secret's code for the same step. The secret is
	// named by a keyed hash, never stored in the clear.
	key := fmt.Sprintf("totp/%s/%s/%x/%d", p.cfg.ID, u.Sub, p.svc.HashClientSecret("totp-replay:"+string(secret)), step)
	expires := time.Unix(int64(step+2)*int64(totpStep/time.Second), 0)
	if err := p.st().UseOnce(ctx, key, expires, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &Error{Code: CodeCodeMismatch, Message: "Invalid code received for user", Cause: errors.New("TOTP code already used")}
		}
		return internal(err)
	}
	return nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

package userpool

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userattr"
)

// Attribute is a user attribute as the Cognito API lists it.
type Attribute struct {
	Name  string
	Value string
}

// Attributes lists the user's attributes, sub first.
func Attributes(u store.User) []Attribute {
	out := []Attribute{{"sub", u.Sub}}
	if u.Email != "" {
		out = append(out, Attribute{"email", u.Email}, Attribute{"email_verified", fmt.Sprint(u.EmailVerified)})
	}
	// In name order: the same user reads the same every time.
	for _, k := range slices.Sorted(maps.Keys(u.Attributes)) {
		out = append(out, Attribute{k, u.Attributes[k]})
	}
	return out
}

func setAttr(u *store.User, name, value string) {
	switch name {
	case "email":
		if value != u.Email {
			u.Email = value
			u.EmailVerified = false
		}
	case "email_verified":
		u.EmailVerified = strings.EqualFold(value, "true")
	default:
		if u.Attributes == nil {
			u.Attributes = map[string]string{}
		}
		switch name {
		case "phone_number":
			if value != u.Attributes[name] {
				u.Attributes["phone_number_verified"] = "false"
			}
		case "phone_number_verified":
			value = strings.ToLower(value)
		}
		u.Attributes[name] = value
	}
}

// setAttrs applies attrs (checked by validateAttrs or validateAdminAttrs)
// to u, the verification flags last so that they hold for an address set
// in the same call whatever the order.
func setAttrs(u *store.User, attrs []Attribute) {
	for _, flags := range []bool{false, true} {
		for _, a := range attrs {
			if userattr.Verified(a.Name) == flags {
				setAttr(u, a.Name, a.Value)
			}
		}
	}
}

// deleteAttr removes an attribute (checked by checkAttrNames) from u.
// Removing an address removes its verification flag; removing a flag
// marks the address unverified.
func deleteAttr(u *store.User, name string) {
	switch name {
	case "email":
		u.Email, u.EmailVerified = "", false
	case "email_verified":
		u.EmailVerified = false
	case "phone_number":
		delete(u.Attributes, name)
		delete(u.Attributes, "phone_number_verified")
	default:
		delete(u.Attributes, name)
	}
}

// validateAttrs checks attribute names and values a user may set (SignUp,
// UpdateUserAttributes, the NEW_PASSWORD_REQUIRED challenge): writable
// schema attributes only (standard ones, and the custom:* ones the pool
// lists in user_writable_attributes), within the length limits, an email
// address well-formed (userattr.CheckValue). sub, the verification flags and
// unlisted custom:* attributes are refused with Cognito's
// NotAuthorizedException, any other name (cognito:* included) with
// InvalidParameterException.
func (p *Pool) validateAttrs(attrs []Attribute) error { return p.checkAttrs(attrs, false) }

// validateAdminAttrs is validateAttrs for an administrator (AdminCreateUser,
// AdminUpdateUserAttributes), who may also set email_verified and
// phone_number_verified to true or false, and any custom:* attribute.
func (p *Pool) validateAdminAttrs(attrs []Attribute) error { return p.checkAttrs(attrs, true) }

func (p *Pool) checkAttrs(attrs []Attribute, admin bool) error {
	if len(attrs) > 50 {
		return newErr(CodeInvalidParameter, "Too many attributes")
	}
	for _, a := range attrs {
		if utf8.RuneCountInString(a.Value) > userattr.MaxValue {
			return newErr(CodeInvalidParameter, "Attribute name or value too long")
		}
		if err := p.checkAttrName(a.Name, admin); err != nil {
			return err
		}
		if msg := userattr.CheckValue(a.Name, a.Value); msg != "" {
			return newErr(CodeInvalidParameter, msg)
		}
	}
	return nil
}

// checkAttrName checks that a user (or, with admin, an administrator) may
// write or delete the attribute name: sub never; the verification flags
// only an administrator; standard attributes anyone; custom:* attributes
// an administrator, and a user only those in the pool's
// user_writable_attributes (custom attributes, such as one mapped to a
// principal tag, are the administrator's by default).
func (p *Pool) checkAttrName(name string, admin bool) error {
	custom := userattr.Custom(name)
	switch {
	case len(name) > userattr.MaxName:
		return newErr(CodeInvalidParameter, "Attribute name or value too long")
	case name == "sub" || (!admin && userattr.Verified(name)):
		return errUnauthorizedAttr()
	case userattr.Verified(name):
		return nil
	case !userattr.Standard(name) && !custom:
		return newErr(CodeInvalidParameter, "Attribute does not exist in the schema: "+name)
	case custom && !admin && !p.userWritable[name]:
		return errUnauthorizedAttr()
	}
	return nil
}

func errUnauthorizedAttr() *Error {
	return newErr(CodeNotAuthorized, "A client attempted to write unauthorized attribute")
}

// checkAttrNames checks the names of DeleteUserAttributes (admin false)
// or AdminDeleteUserAttributes (admin true).
func (p *Pool) checkAttrNames(names []string, admin bool) error {
	if len(names) == 0 {
		return newErr(CodeInvalidParameter, "1 validation error detected: Value at 'userAttributeNames' failed to satisfy constraint: Member must not be null")
	}
	if len(names) > 50 {
		return newErr(CodeInvalidParameter, "Too many attributes")
	}
	for _, n := range names {
		if err := p.checkAttrName(n, admin); err != nil {
			return err
		}
	}
	return nil
}

// CodeDelivery describes where a code was sent.
type CodeDelivery struct {
	Destination    string
	DeliveryMedium string
	AttributeName  string
}

func maskEmail(e string) string {
	at := strings.IndexByte(e, '@')
	if at <= 0 {
		return "***"
	}
	dom := e[at+1:]
	md := "***"
	if dom != "" {
		md = dom[:1] + "***"
	}
	return e[:1] + "***@" + md
}

func newCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1000000))
	return fmt.Sprintf("%06d", n.Int64())
}

const (
	codeLifetime    = 24 * time.Hour
	resetLifetime   = time.Hour
	maxCodeAttempts = 5
	// codeWindow is the window of the per-user limits on code requests
	// (maxCodeSends) and wrong codes (maxCodeGuesses), each counted per
	// purpose across codes: a new code does not start them over.
	codeWindow     = time.Hour
	maxCodeSends   = 5
	maxCodeGuesses = 10
)

// codeSendKey names the counter of codes asked for username and purpose
// within codeWindow.
func (p *Pool) codeSendKey(purpose, username string) string {
	return "code-send/" + purpose + "/" + p.cfg.ID + "/" + username
}

// codeGuessKey names the counter of wrong codes given for username and
// purpose within codeWindow.
func (p *Pool) codeGuessKey(purpose, username string) string {
	return "code-guess/" + purpose + "/" + p.cfg.ID + "/" + username
}

func errAttemptLimit(cause string) *Error {
	return &Error{Code: CodeLimitExceeded, Message: "Attempt limit exceeded, please try after some time.", Cause: errors.New(cause)}
}

// countSend counts a user's request for a code (ResendConfirmationCode,
// ForgotPassword, GetUserAttributeVerificationCode, an email change) and
// refuses it with LimitExceededException past maxCodeSends within
// codeWindow. Requests that send nothing (an unknown user's) count alike,
// so the limit tells nothing about whether an account exists.
func (p *Pool) countSend(ctx context.Context, purpose, username string) error {
	n, err := p.st().Incr(ctx, p.codeSendKey(purpose, username), codeWindow, p.now())
	if err != nil {
		return internal(err)
	}
	if n > maxCodeSends {
		return errAttemptLimit("code send limit reached")
	}
	return nil
}

// checkGuesses refuses any code, the right one included, with
// LimitExceededException once username has given maxCodeGuesses wrong
// codes for purpose within codeWindow: asking for a new code does not
// buy more guesses.
func (p *Pool) checkGuesses(ctx context.Context, purpose, username string) error {
	n, err := p.st().Count(ctx, p.codeGuessKey(purpose, username), p.now())
	if err != nil {
		return internal(err)
	}
	if n >= maxCodeGuesses {
		return errAttemptLimit("wrong code limit reached")
	}
	return nil
}

// countGuess counts a wrong code toward checkGuesses.
func (p *Pool) countGuess(ctx context.Context, purpose, username string) error {
	if _, err := p.st().Incr(ctx, p.codeGuessKey(purpose, username), codeWindow, p.now()); err != nil {
		return internal(err)
	}
	return nil
}

// wrongCodeForUnknown answers a code given where none is pending (an
// unknown user, or one with no code of purpose) as a wrong guess at a
// pending code is answered: CodeMismatchException, and after
// maxCodeAttempts guesses TooManyFailedAttemptsException, as a real code
// would. The guesses are counted apart (decoyGuessKey), not toward the
// user's wrong-code limit: guesses at no code cannot lock a user out.
func (p *Pool) wrongCodeForUnknown(ctx context.Context, purpose, username string) error {
	n, err := p.st().Incr(ctx, p.decoyGuessKey(purpose, username), codeLifetime, p.now())
	if err != nil {
		return internal(err)
	}
	if n > maxCodeAttempts {
		return newErr(CodeTooManyFailedAttempts, "Too many failed attempts; request a new code.")
	}
	return newErr(CodeCodeMismatch, "Invalid verification code provided, please try again.")
}

// decoyGuessKey names the counter of guesses at no code (wrongCodeForUnknown);
// a request for a code starts it over, as a new code does its attempts.
func (p *Pool) decoyGuessKey(purpose, username string) string {
	return "code-decoy/" + purpose + "/" + p.cfg.ID + "/" + username
}

// decoyDelivery is the answer to a code request that sends nothing (an
// unknown or disabled user, or one without a verified address): a masked
// destination shaped as maskEmail's, whose letters come from a keyed hash
// of the pool and username, so that the same username always gets the
// same one and it cannot be told from a real address's mask.
func (p *Pool) decoyDelivery(username string) CodeDelivery {
	m := hmac.New(sha256.New, p.svc.decoyKey)
	m.Write([]byte(p.cfg.ID + "\x00" + username))
	sum := m.Sum(nil)
	letter := func(b byte) string { return string(rune('a' + int(b)%26)) }
	return CodeDelivery{Destination: letter(sum[0]) + "***@" + letter(sum[1]) + "***", DeliveryMedium: "EMAIL", AttributeName: "email"}
}

// codePurposes are the purposes of mailed codes (the first part of their
// store key).
var codePurposes = []string{"confirm", "reset", purposeVerifyEmail}

// codeKey is the store key of username's pending code for purpose: one
// spelling for the code's writers and for whatever must delete it.
func (p *Pool) codeKey(purpose, username string) string {
	return purpose + "/" + p.cfg.ID + "/" + username
}

// purposeVerifyEmail is the purpose of a code verifying the user's email
// address; such a code is bound to the address it was sent to.
const purposeVerifyEmail = "verify-email"

// codeSecret is what the stored hash of a code covers: the purpose, the
// code and, when bind is set, what the code is bound to (an address).
func codeSecret(purpose, bind, code string) string {
	if bind == "" {
		return purpose + ":" + code
	}
	return purpose + ":" + bind + ":" + code
}

func (p *Pool) sendCode(ctx context.Context, purpose string, u store.User, life time.Duration, subject, text string) (CodeDelivery, error) {
	return p.sendBoundCode(ctx, purpose, "", u, life, subject, text)
}

// sendBoundCode mails u a new code for purpose (putCode) and answers where
// it went.
func (p *Pool) sendBoundCode(ctx context.Context, purpose, bind string, u store.User, life time.Duration, subject, text string) (CodeDelivery, error) {
	if err := p.st().InTx(ctx, func(tx store.Tx) error {
		return p.putCode(ctx, tx, purpose, bind, u, life, subject, text)
	}); err != nil {
		return CodeDelivery{}, internal(err)
	}
	p.mailQueued()
	return codeDelivery(u), nil
}

// putCode stores in tx a new code for purpose, replacing any earlier one,
// and queues its mail to u (text formats the code); the code verifies only
// together with bind (see checkBoundCode). The caller calls mailQueued
// once tx committed.
func (p *Pool) putCode(ctx context.Context, tx store.Tx, purpose, bind string, u store.User, life time.Duration, subject, text string) error {
	code := newCode()
	now := p.now()
	if err := tx.PutCode(ctx, store.Code{Key: p.codeKey(purpose, u.Username),
		CodeHash: p.svc.HashClientSecret(codeSecret(purpose, bind, code)), CreatedAt: now, ExpiresAt: now.Add(life)}); err != nil {
		return err
	}
	return p.queueMail(ctx, tx, u.Email, subject, fmt.Sprintf(text, code))
}

// decoyCode answers a code request that mails nothing (decoyDelivery)
// after the work a mailed code costs: sendCode's, for a user without an
// address, its code stored under a key no user's code has (purpose
// "decoy/..."), never checked, expiring as a code does. Without it, the
// missing write would tell by the time the answer takes that no account
// exists.
func (p *Pool) decoyCode(ctx context.Context, purpose, username string, life time.Duration) (CodeDelivery, error) {
	if _, err := p.sendCode(ctx, "decoy/"+purpose, store.User{Username: username}, life, "", "%s"); err != nil {
		return CodeDelivery{}, err
	}
	return p.decoyDelivery(username), nil
}

// codeDelivery is where a code mailed to u went: nowhere (the zero
// CodeDelivery) when u has no address.
func codeDelivery(u store.User) CodeDelivery {
	if u.Email == "" {
		return CodeDelivery{}
	}
	return CodeDelivery{Destination: maskEmail(u.Email), DeliveryMedium: "EMAIL", AttributeName: "email"}
}

// mailsCode reports whether a sign-up with attrs (checked by
// validateAttrs) gives the user an email address, to which SignUp mails
// the confirmation code.
func mailsCode(attrs []Attribute) bool {
	for _, a := range attrs {
		if a.Name == "email" && a.Value != "" {
			return true
		}
	}
	return false
}

// checkCode verifies and consumes a code.
func (p *Pool) checkCode(ctx context.Context, purpose, username, code string) error {
	return p.checkBoundCode(ctx, purpose, "", username, code)
}

// checkBoundCode verifies and consumes a code sent by sendBoundCode with
// the same bind. A wrong code counts toward the code's attempts limit and
// toward the user's limit of wrong codes for purpose (checkGuesses).
func (p *Pool) checkBoundCode(ctx context.Context, purpose, bind, username, code string) error {
	if err := p.checkGuesses(ctx, purpose, username); err != nil {
		return err
	}
	key := p.codeKey(purpose, username)
	now := p.now()
	var verdict *Error
	_, err := p.st().UpdateCode(ctx, key, func(c *store.Code) error {
		switch {
		case !now.Before(c.ExpiresAt):
			verdict = newErr(CodeExpiredCode, "Invalid code provided, please request a code again.")
		case c.Attempts >= maxCodeAttempts:
			verdict = newErr(CodeTooManyFailedAttempts, "Too many failed attempts; request a new code.")
		case !p.svc.checkHash(codeSecret(purpose, bind, code), c.CodeHash):
			c.Attempts++
			verdict = newErr(CodeCodeMismatch, "Invalid verification code provided, please try again.")
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		// No code pending: answered as for an unknown user, so that the
		// answer does not tell an account exists.
		return p.wrongCodeForUnknown(ctx, purpose, username)
	}
	if err != nil {
		return internal(err)
	}
	if verdict != nil {
		if verdict.Code == CodeCodeMismatch {
			if err := p.countGuess(ctx, purpose, username); err != nil {
				return err
			}
		}
		return verdict
	}
	if err := p.st().DeleteCode(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return internal(err)
	}
	return nil
}

// SignUp registers a user (UNCONFIRMED) and mails a confirmation code.
// A sign-up with an email address, which mails a code, counts toward the
// per-source limit on code requests of src (throttleCodeSend).
func (p *Pool) SignUp(ctx context.Context, c store.Client, username, password, secretHash string, attrs []Attribute, src string) (store.User, CodeDelivery, error) {
	if err := usernameInput(username); err != nil {
		return store.User{}, CodeDelivery{}, err
	}
	u, d, err := p.signUp(ctx, c, username, password, secretHash, attrs, src)
	ev := auditFor("SignUp", c, u, err)
	ev.Username = username
	p.record(ctx, ev)
	return u, d, err
}

func (p *Pool) signUp(ctx context.Context, c store.Client, username, password, secretHash string, attrs []Attribute, src string) (store.User, CodeDelivery, error) {
	if p.cfg.SelfSignup != nil && !*p.cfg.SelfSignup {
		return store.User{}, CodeDelivery{}, newErr(CodeNotAuthorized, "SignUp is not permitted for this user pool")
	}
	if err := validUsername(username); err != nil {
		return store.User{}, CodeDelivery{}, err
	}
	if err := p.checkSecretHash(c, username, secretHash); err != nil {
		return store.User{}, CodeDelivery{}, err
	}
	if err := checkPasswordInput("password", password); err != nil {
		return store.User{}, CodeDelivery{}, err
	}
	if err := p.validateAttrs(attrs); err != nil {
		return store.User{}, CodeDelivery{}, err
	}
	if err := CheckPasswordPolicy(p.cfg.PasswordPolicy, password); err != nil {
		return store.User{}, CodeDelivery{}, err
	}
	// Counted whether or not the username is taken. A sign-up without an
	// address mails nothing (the code is only stored), so it does not
	// count toward the limit on mail: scripts and load tests create users
	// that way from one address.
	if mailsCode(attrs) {
		if err := p.throttleCodeSend(ctx, src); err != nil {
			return store.User{}, CodeDelivery{}, err
		}
	}
	now := p.now()
	u := store.User{PoolID: p.cfg.ID, Username: username, Sub: uuid.NewString(), Attributes: map[string]string{},
		Status: store.StatusUnconfirmed, Enabled: true, PasswordHash: HashPassword(password, p.svc.deps.Argon2),
		CreatedAt: now, UpdatedAt: now}
	setAttrs(&u, attrs)
	// The user, its confirmation code and the code's mail: one write, so
	// that no account is left without its code.
	err := p.st().InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return p.putCode(ctx, tx, "confirm", "", u, codeLifetime, "Your verification code", "Your confirmation code is %s")
	})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, CodeDelivery{}, newErr(CodeUsernameExists, "User already exists")
	}
	if err != nil {
		return store.User{}, CodeDelivery{}, internal(err)
	}
	p.mailQueued()
	return u, codeDelivery(u), nil
}

// maxUsername is Cognito's limit on a username, in characters.
const maxUsername = 128

// validUsername checks a new username against Cognito's constraints on
// the Username member: 1 to 128 characters (not bytes), each a letter,
// mark, symbol, number or punctuation ([\p{L}\p{M}\p{S}\p{N}\p{P}]+), so
// no spaces, control characters (NUL included) or invisible format
// characters such as U+200B.
func validUsername(u string) error { return checkName("username", u) }

// checkName checks a name as Cognito checks its username and group-name
// members (member): present, at most maxUsername characters, each a
// letter, mark, symbol, number or punctuation.
func checkName(member, s string) error {
	const prefix = "1 validation error detected: Value at '"
	switch {
	case s == "":
		return newErr(CodeInvalidParameter, prefix+member+"' failed to satisfy constraint: Member must not be null")
	case !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxUsername:
		return newErr(CodeInvalidParameter, prefix+member+"' failed to satisfy constraint: Member must have length less than or equal to 128")
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.In(r, unicode.L, unicode.M, unicode.S, unicode.N, unicode.P) }) >= 0:
		return newErr(CodeInvalidParameter, prefix+member+"' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+")
	}
	return nil
}

// usernameInput refuses, before anything is looked up, counted or
// recorded, a username no user can have: over 128 characters or not
// UTF-8 (an unauthenticated caller's 250,000-character name would
// otherwise land in counters, decoy codes and the audit trail). Empty is
// left to the operation, which says which member is missing.
func usernameInput(u string) error {
	if u == "" || utf8.ValidString(u) && utf8.RuneCountInString(u) <= maxUsername {
		return nil
	}
	return checkName("username", u)
}

// ConfirmSignUp confirms a user with the mailed code. The attempt counts
// toward the per-source limit on codes given from src (throttleCodeCheck).
func (p *Pool) ConfirmSignUp(ctx context.Context, c store.Client, username, code, secretHash, src string) error {
	if err := usernameInput(username); err != nil {
		return err
	}
	err := p.confirmSignUp(ctx, c, username, code, secretHash, src)
	ev := auditEvent("ConfirmSignUp", c.ClientID, username, "", err)
	p.record(ctx, ev)
	return err
}

func (p *Pool) confirmSignUp(ctx context.Context, c store.Client, username, code, secretHash, src string) (err error) {
	if err := p.checkSecretHash(c, username, secretHash); err != nil {
		return err
	}
	failed, err := p.throttleCodeCheck(ctx, src)
	if err != nil {
		return err
	}
	defer func() { failed(err) }()
	u, err := p.st().GetUser(ctx, p.cfg.ID, username)
	if errors.Is(err, store.ErrNotFound) {
		return p.wrongCodeForUnknown(ctx, "confirm", username)
	}
	if err != nil {
		return internal(err)
	}
	if u.Status != store.StatusUnconfirmed {
		return newErr(CodeNotAuthorized, "User cannot be confirmed. Current status is "+u.Status)
	}
	if err := p.checkCode(ctx, "confirm", username, code); err != nil {
		return err
	}
	_, err = p.st().UpdateUser(ctx, p.cfg.ID, username, func(x *store.User) error {
		x.Status = store.StatusConfirmed
		if x.Email != "" {
			x.EmailVerified = true
		}
		x.UpdatedAt = p.now()
		return nil
	})
	if err != nil {
		return internal(err)
	}
	return nil
}

// AdminConfirmSignUp confirms an UNCONFIRMED user without a code
// (AdminConfirmSignUp): UserNotFoundException for an unknown user, and,
// changing nothing, NotAuthorizedException for one in any other status,
// as Cognito answers. The pending confirmation code goes in the same
// transaction, so that no code outlives the sign-up it was for. Unlike
// ConfirmSignUp it leaves email_verified as it is, as Cognito does: no
// code proved the address.
func (p *Pool) AdminConfirmSignUp(ctx context.Context, username string) error {
	_, err := p.adminUpdate(ctx, "AdminConfirmSignUp", username, false, func(x *store.User) error {
		if x.Status != store.StatusUnconfirmed {
			return newErr(CodeNotAuthorized, "User cannot be confirmed. Current status is "+x.Status)
		}
		x.Status = store.StatusConfirmed
		return nil
	}, func(tx store.Tx, u store.User) error {
		if err := tx.DeleteCode(ctx, p.codeKey("confirm", username)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	return err
}

// ResendConfirmationCode mails a new confirmation code, at most
// maxCodeSends within codeWindow (LimitExceededException after), and
// within the per-source limit on code requests of src (throttleCodeSend).
func (p *Pool) ResendConfirmationCode(ctx context.Context, c store.Client, username, secretHash, src string) (CodeDelivery, error) {
	if err := usernameInput(username); err != nil {
		return CodeDelivery{}, err
	}
	if err := p.checkSecretHash(c, username, secretHash); err != nil {
		return CodeDelivery{}, err
	}
	if err := p.throttleCodeSend(ctx, src); err != nil {
		p.record(ctx, auditEvent("ResendConfirmationCode", c.ClientID, username, "", err))
		return CodeDelivery{}, err
	}
	if err := p.countSend(ctx, "confirm", username); err != nil {
		return CodeDelivery{}, err
	}
	if err := p.st().ResetCounter(ctx, p.decoyGuessKey("confirm", username)); err != nil {
		return CodeDelivery{}, internal(err)
	}
	u, err := p.st().GetUser(ctx, p.cfg.ID, username)
	if errors.Is(err, store.ErrNotFound) {
		// Answer as for an existing user: no account enumeration.
		return p.decoyCode(ctx, "confirm", username, codeLifetime)
	}
	if err != nil {
		return CodeDelivery{}, internal(err)
	}
	if u.Status != store.StatusUnconfirmed {
		return CodeDelivery{}, newErr(CodeInvalidParameter, "User is already confirmed.")
	}
	return p.sendCode(ctx, "confirm", u, codeLifetime, "Your verification code", "Your confirmation code is %s")
}

// ForgotPassword mails a reset code to the user's verified email address,
// at most maxCodeSends within codeWindow (LimitExceededException after).
// When no code can be sent (an unknown or disabled user, one still on its
// temporary password, or one without a verified address) it sends nothing and answers exactly as for a sent
// code, with a decoy destination (decoyDelivery): the answer never tells
// whether an account exists. Requests count toward the per-source limit
// on code requests of src (throttleCodeSend), known users or not.
func (p *Pool) ForgotPassword(ctx context.Context, c store.Client, username, secretHash, src string) (CodeDelivery, error) {
	if err := usernameInput(username); err != nil {
		return CodeDelivery{}, err
	}
	if err := p.checkSecretHash(c, username, secretHash); err != nil {
		return CodeDelivery{}, err
	}
	if err := p.throttleCodeSend(ctx, src); err != nil {
		p.record(ctx, auditEvent("ForgotPassword", c.ClientID, username, "", err))
		return CodeDelivery{}, err
	}
	if err := p.countSend(ctx, "reset", username); err != nil {
		p.record(ctx, auditEvent("ForgotPassword", c.ClientID, username, "", err))
		return CodeDelivery{}, err
	}
	if err := p.st().ResetCounter(ctx, p.decoyGuessKey("reset", username)); err != nil {
		return CodeDelivery{}, internal(err)
	}
	u, err := p.st().GetUser(ctx, p.cfg.ID, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return CodeDelivery{}, internal(err)
	}
	why := ""
	switch {
	case err != nil:
		why = "unknown user"
	case !u.Enabled:
		why = "user is disabled"
	case u.Status == store.StatusForceChangePassword:
		// Its first sign-in, with the temporary password, sets one; a
		// reset would skip that step (Cognito refuses it too).
		why = "user must change its temporary password first"
	case u.Email == "" || !u.EmailVerified:
		// Codes go by email only (writ sends no SMS): without a verified
		// address there is nowhere safe to send one.
		why = "no verified email address"
	}
	if why != "" {
		ev := auditEvent("ForgotPassword", c.ClientID, username, u.Sub,
			&Error{Code: CodeNotAuthorized, Message: "No code sent.", Cause: errors.New(why)})
		p.record(ctx, ev)
		return p.decoyCode(ctx, "reset", username, resetLifetime)
	}
	d, err := p.sendCode(ctx, "reset", u, resetLifetime, "Your password reset code", "Your password reset code is %s")
	p.record(ctx, auditFor("ForgotPassword", c, u, err))
	return d, err
}

// ConfirmForgotPassword sets a new password with the mailed reset code.
// The attempt counts toward the per-source limit on codes given from src
// (throttleCodeCheck).
func (p *Pool) ConfirmForgotPassword(ctx context.Context, c store.Client, username, code, password, secretHash, src string) error {
	if err := usernameInput(username); err != nil {
		return err
	}
	err := p.confirmForgot(ctx, c, username, code, password, secretHash, src)
	p.record(ctx, auditEvent("ConfirmForgotPassword", c.ClientID, username, "", err))
	return err
}

func (p *Pool) confirmForgot(ctx context.Context, c store.Client, username, code, password, secretHash, src string) (err error) {
	if err := p.checkSecretHash(c, username, secretHash); err != nil {
		return err
	}
	if err := checkPasswordInput("password", password); err != nil {
		return err
	}
	if err := CheckPasswordPolicy(p.cfg.PasswordPolicy, password); err != nil {
		return err
	}
	failed, err := p.throttleCodeCheck(ctx, src)
	if err != nil {
		return err
	}
	defer func() { failed(err) }()
	if _, err := p.st().GetUser(ctx, p.cfg.ID, username); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return p.wrongCodeForUnknown(ctx, "reset", username)
		}
		return internal(err)
	}
	if err := p.checkCode(ctx, "reset", username, code); err != nil {
		return err
	}
	hash := HashPassword(password, p.svc.deps.Argon2)
	// A reset ends every session of the user, with the password change
	// (whoever had taken the account over is out), as
	// AdminUserGlobalSignOut does.
	u, err := p.updateSigningOut(ctx, username, "", func(x *store.User) error {
		switch {
		case !x.Enabled: // disabled since the code was sent
			return newErr(CodeNotAuthorized, "User is disabled.")
		case x.Status == store.StatusForceChangePassword: // given a temporary password since
			return newErr(CodeNotAuthorized, "User password cannot be reset in the current state.")
		}
		x.PasswordHash = hash
		if x.Status == store.StatusResetRequired {
			x.Status = store.StatusConfirmed
		}
		x.UpdatedAt = p.now()
		return nil
	})
	if err != nil {
		return storeErr(err, errUserNotFound)
	}
	p.recordSignOut(ctx, u, "password reset by ConfirmForgotPassword")
	if err := p.st().ResetCounter(ctx, p.userLockKey(username)); err != nil {
		return internal(err)
	}
	return nil
}

// ChangePassword changes the signed-in user's password and ends the
// user's other sessions, keeping the one it was called with, as Cognito
// does: the sign-in of accessToken (its origin_jti: its access and ID
// tokens and the family of its refresh token) goes on, while every other
// sign-in's tokens and every hosted browser session are ended as by
// GlobalSignOut. (A browser session is not tied to the tokens it led to,
// so even the caller's own browser signs in again.)
func (p *Pool) ChangePassword(ctx context.Context, accessToken, previous, proposed string) error {
	c, u, err := p.AccessUser(ctx, accessToken)
	if err != nil {
		return err
	}
	// Every access token writ mints names its sign-in; one that did not
	// would keep nothing (keep "": every session ends, the caller's too).
	err = p.changePassword(ctx, u, c.OriginJTI, previous, proposed)
	p.record(ctx, auditEvent("ChangePassword", "", u.Username, u.Sub, err))
	return err
}

func (p *Pool) changePassword(ctx context.Context, u store.User, originJTI, previous, proposed string) error {
	if err := checkPasswordInput("proposedPassword", proposed); err != nil {
		return err
	}
	userKey := p.userLockKey(u.Username)
	if n, err := p.st().Count(ctx, userKey, p.now()); err != nil {
		return internal(err)
	} else if p.cfg.Lockout.MaxFailures > 0 && n >= p.cfg.Lockout.MaxFailures {
		return newErr(CodeLimitExceeded, "Attempt limit exceeded, please try after some time.")
	}
	if !VerifyPassword(u.PasswordHash, previous) {
		if _, err := p.st().Incr(ctx, userKey, p.cfg.Lockout.Window, p.now()); err != nil {
			return internal(err)
		}
		return errBadCredentials()
	}
	if err := CheckPasswordPolicy(p.cfg.PasswordPolicy, proposed); err != nil {
		return err
	}
	hash := HashPassword(proposed, p.svc.deps.Argon2)
	nu, err := p.updateSigningOut(ctx, u.Username, originJTI, func(x *store.User) error {
		// Signed out, disabled or given another password since AccessUser
		// checked the token and the previous password: keeping the
		// calling sign-in now would bring it back.
		if x.Sub != u.Sub || !x.Enabled || !x.RevokedBefore.Equal(u.RevokedBefore) || x.PasswordHash != u.PasswordHash {
			return newErr(CodeNotAuthorized, "Access Token has been revoked")
		}
		x.PasswordHash = hash
		x.UpdatedAt = p.now()
		return nil
	})
	var ue *Error
	if errors.As(err, &ue) {
		return ue
	}
	if err != nil {
		return internal(err)
	}
	p.recordSignOut(ctx, nu, "password changed by ChangePassword: the calling sign-in is kept")
	return nil
}

// UpdateAttributes sets attributes of the signed-in user. A changed email
// address is unverified until the user confirms it (VerifyUserAttribute)
// with the code this mails to the new address; the deliveries are
// returned (CodeDeliveryDetailsList). src is the caller's address, for
// the per-source limit on code requests.
func (p *Pool) UpdateAttributes(ctx context.Context, accessToken string, attrs []Attribute, src string) ([]CodeDelivery, error) {
	_, u, err := p.AccessUser(ctx, accessToken)
	if err != nil {
		return nil, err
	}
	if err := p.validateAttrs(attrs); err != nil {
		return nil, err
	}
	if err := p.countEmailChange(ctx, u, attrs, src); err != nil {
		return nil, err
	}
	// The change and the new address's code (and its mail) are one write.
	var ds []CodeDelivery
	_, err = p.adminUpdate(ctx, "UpdateUserAttributes", u.Username, false, func(x *store.User) error {
		setAttrs(x, attrs)
		return nil
	}, func(tx store.Tx, nu store.User) error {
		var err error
		ds, err = p.verifyChangedEmail(ctx, tx, u, nu)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// countEmailChange counts the verification code that a user's attrs will
// mail by changing u's email address toward the limit on such codes
// (countSend) and the per-source limit on code requests of src
// (throttleCodeSend), as GetUserAttributeVerificationCode counts its own:
// past either the change is refused, changing nothing.
func (p *Pool) countEmailChange(ctx context.Context, u store.User, attrs []Attribute, src string) error {
	for _, a := range attrs {
		if a.Name == "email" && a.Value != u.Email {
			if err := p.throttleCodeSend(ctx, src); err != nil {
				return err
			}
			return p.countSend(ctx, purposeVerifyEmail, u.Username)
		}
	}
	return nil
}

// verifyChangedEmail stores in tx, and queues the mail of, a verification
// code for the new address of a user whose email changed from old to nu
// and is not verified, in the transaction of the change (the caller calls
// mailQueued once it committed); it returns where the code goes.
func (p *Pool) verifyChangedEmail(ctx context.Context, tx store.Tx, old, nu store.User) ([]CodeDelivery, error) {
	if nu.Email == "" || nu.Email == old.Email || nu.EmailVerified {
		return []CodeDelivery{}, nil
	}
	if err := p.putCode(ctx, tx, purposeVerifyEmail, nu.Email, nu, codeLifetime, emailVerificationSubject, emailVerificationText); err != nil {
		return nil, err
	}
	return []CodeDelivery{codeDelivery(nu)}, nil
}

// The mail of an email verification code.
const (
	emailVerificationSubject = "Your verification code"
	emailVerificationText    = "Your verification code is %s"
)

func (p *Pool) sendEmailVerification(ctx context.Context, u store.User) (CodeDelivery, error) {
	return p.sendBoundCode(ctx, purposeVerifyEmail, u.Email, u, codeLifetime, emailVerificationSubject, emailVerificationText)
}

// verifiableAttr checks the AttributeName of GetUserAttributeVerificationCode
// and VerifyUserAttribute: codes go by email only (writ sends no SMS), to
// an address the user has.
func verifiableAttr(u store.User, name string) error {
	switch name {
	case "email":
		if u.Email == "" {
			return newErr(CodeInvalidParameter, "The user has no email attribute to verify.")
		}
		return nil
	case "phone_number":
		return newErr(CodeInvalidParameter, "Phone numbers cannot be verified: this user pool sends no SMS.")
	}
	return newErr(CodeInvalidParameter, "Attribute "+truncate(name, 40)+" cannot be verified.")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// GetAttributeVerificationCode mails the signed-in user a code verifying
// its email address (GetUserAttributeVerificationCode), replacing any
// earlier one. The request counts toward the per-source limit on code
// requests of src (throttleCodeSend).
func (p *Pool) GetAttributeVerificationCode(ctx context.Context, accessToken, attr, src string) (CodeDelivery, error) {
	_, u, err := p.AccessUser(ctx, accessToken)
	if err != nil {
		return CodeDelivery{}, err
	}
	if err := verifiableAttr(u, attr); err != nil {
		return CodeDelivery{}, err
	}
	err = p.throttleCodeSend(ctx, src)
	if err == nil {
		err = p.countSend(ctx, purposeVerifyEmail, u.Username)
	}
	if err != nil {
		p.record(ctx, auditEvent("GetUserAttributeVerificationCode", "", u.Username, u.Sub, err))
		return CodeDelivery{}, err
	}
	d, err := p.sendEmailVerification(ctx, u)
	p.record(ctx, auditEvent("GetUserAttributeVerificationCode", "", u.Username, u.Sub, err))
	return d, err
}

// VerifyAttribute marks the signed-in user's email address verified with a
// code mailed to that very address (VerifyUserAttribute). A wrong code is
// CodeMismatchException and counts toward the code's attempts limit and
// the user's limit of wrong codes (checkGuesses); an
// expired, used or superseded code, or one sent to another address, is
// refused. The attempt counts toward the per-source limit on codes given
// from src (throttleCodeCheck).
func (p *Pool) VerifyAttribute(ctx context.Context, accessToken, attr, code, src string) error {
	_, u, err := p.AccessUser(ctx, accessToken)
	if err != nil {
		return err
	}
	err = p.verifyAttribute(ctx, u, attr, code, src)
	p.record(ctx, auditEvent("VerifyUserAttribute", "", u.Username, u.Sub, err))
	return err
}

func (p *Pool) verifyAttribute(ctx context.Context, u store.User, attr, code, src string) (err error) {
	if err := verifiableAttr(u, attr); err != nil {
		return err
	}
	failed, err := p.throttleCodeCheck(ctx, src)
	if err != nil {
		return err
	}
	defer func() { failed(err) }()
	if err := p.checkBoundCode(ctx, purposeVerifyEmail, u.Email, u.Username, code); err != nil {
		return err
	}
	_, err = p.st().UpdateUser(ctx, p.cfg.ID, u.Username, func(x *store.User) error {
		if x.Email != u.Email {
			// Changed since the check: the code was for the old address.
			return newErr(CodeCodeMismatch, "Invalid verification code provided, please try again.")
		}
		x.EmailVerified = true
		x.UpdatedAt = p.now()
		return nil
	})
	var ue *Error
	if errors.As(err, &ue) {
		return ue
	}
	if err != nil {
		return internal(err)
	}
	return nil
}

// DeleteAttributes deletes attributes of the signed-in user
// (DeleteUserAttributes): writable ones only, as for UpdateAttributes.
func (p *Pool) DeleteAttributes(ctx context.Context, accessToken string, names []string) error {
	_, u, err := p.AccessUser(ctx, accessToken)
	if err != nil {
		return err
	}
	if err := p.checkAttrNames(names, false); err != nil {
		return err
	}
	if _, err := p.st().UpdateUser(ctx, p.cfg.ID, u.Username, func(x *store.User) error {
		for _, n := range names {
			deleteAttr(x, n)
		}
		x.UpdatedAt = p.now()
		return nil
	}); err != nil {
		return internal(err)
	}
	p.record(ctx, auditEvent("DeleteUserAttributes", "", u.Username, u.Sub, nil))
	return nil
}

// AdminUpdateAttributes sets a user's attributes for an administrator
// (AdminUpdateUserAttributes), who may also set email_verified and
// phone_number_verified. A changed email address is unverified, and gets
// a verification code, unless email_verified is set in the same call.
func (p *Pool) AdminUpdateAttributes(ctx context.Context, username string, attrs []Attribute) error {
	if err := p.validateAdminAttrs(attrs); err != nil {
		return err
	}
	var old store.User
	_, err := p.adminUpdate(ctx, "AdminUpdateUserAttributes", username, false, func(x *store.User) error {
		old = *x
		setAttrs(x, attrs)
		return nil
	}, func(tx store.Tx, nu store.User) error {
		_, err := p.verifyChangedEmail(ctx, tx, old, nu)
		return err
	})
	return err
}

// AdminDeleteAttributes deletes a user's attributes for an administrator
// (AdminDeleteUserAttributes), who may also delete the verification flags
// (which marks the address unverified).
func (p *Pool) AdminDeleteAttributes(ctx context.Context, username string, names []string) error {
	if err := p.checkAttrNames(names, true); err != nil {
		return err
	}
	_, err := p.AdminUpdate(ctx, "AdminDeleteUserAttributes", username, func(x *store.User) error {
		for _, n := range names {
			deleteAttr(x, n)
		}
		return nil
	})
	return err
}

// DeleteSelf deletes the signed-in user (DeleteUser): its account, its
// refresh tokens and its pending codes. Its access tokens then fail
// every online check.
func (p *Pool) DeleteSelf(ctx context.Context, accessToken string) error {
	_, u, err := p.AccessUser(ctx, accessToken)
	if err != nil {
		return err
	}
	return p.svc.deleteUser(ctx, p, "DeleteUser", u.Username)
}

// GlobalSignOut revokes every refresh token of the signed-in user and
// refuses its earlier access tokens in online checks.
func (p *Pool) GlobalSignOut(ctx context.Context, accessToken string) error {
	c, u, err := p.AccessUser(ctx, accessToken)
	if err != nil {
		return err
	}
	return p.SignOutUser(ctx, u, c.OriginJTI)
}

// SignOutUser signs a user out everywhere (GlobalSignOut and its admin form).
func (p *Pool) SignOutUser(ctx context.Context, u store.User, originJTI string) error {
	if _, err := p.updateSigningOut(ctx, u.Username, "", nil); err != nil {
		return internal(err)
	}
	if err := p.revokeOrigin(ctx, originJTI); err != nil {
		return err
	}
	p.recordSignOut(ctx, u, "")
	return nil
}

// signOutTx ends, in tx, every session of user username as of now: the
// sign-out of GlobalSignOut, AdminUserGlobalSignOut, AdminDisableUser and
// every password change. It applies change (when not nil) to the user and
// sets its RevokedBefore in the same write, and marks every refresh token
// of the user revoked. RevokedBefore is what every online check compares
// with: the access and ID tokens issued before it are refused (signedOut:
// AccessUser, UserInfo, introspection, token exchange), so are the refresh
// tokens created before it (refreshSignedOut) and the hosted pages'
// browser sessions started before it.
//
// keep (ChangePassword's) names a sign-in (origin_jti) that stands after
// the sign-out (keepSignIn). Then no refresh token is marked revoked,
// since the store revokes one family or all of a user's but cannot spare
// one: the others are refused by refreshSignedOut alone.
func (p *Pool) signOutTx(ctx context.Context, tx store.Tx, username, keep string, now time.Time, change func(*store.User) error) (store.User, error) {
	u, err := tx.UpdateUser(ctx, p.cfg.ID, username, func(x *store.User) error {
		if change != nil {
			if err := change(x); err != nil {
				return err
			}
		}
		x.RevokedBefore = now
		return nil
	})
	if err != nil {
		return store.User{}, err
	}
	if keep != "" {
		return u, p.keepSignIn(ctx, tx, u, keep, now)
	}
	if _, err := tx.RevokeUserRefreshTokens(ctx, p.cfg.ID, username); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// updateSigningOut applies change to the user and signs it out everywhere
// but keep (signOutTx) in one transaction, so that a crash cannot leave a
// password changed and the sessions of the old one alive. An *Error from
// change is returned as it is.
func (p *Pool) updateSigningOut(ctx context.Context, username, keep string, change func(*store.User) error) (store.User, error) {
	now := p.now()
	var u store.User
	err := p.st().InTx(ctx, func(tx store.Tx) error {
		var err error
		u, err = p.signOutTx(ctx, tx, username, keep, now, change)
		return err
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// recordSignOut records in the audit trail that every session of u ended
// (but the one ChangePassword keeps), as GlobalSignOut does, and why when
// something else than a sign-out ended them.
func (p *Pool) recordSignOut(ctx context.Context, u store.User, why string) {
	e := auditEvent("GlobalSignOut", "", u.Username, u.Sub, nil)
	e.Reason = why
	p.record(ctx, e)
}

// AssociateSoftwareToken starts TOTP enrolment, for a signed-in user
// (accessToken) or during sign-in (the MFA_SETUP session). It returns the
// secret and, for the session form, the next session.
func (p *Pool) AssociateSoftwareToken(ctx context.Context, accessToken, session string) (secret, next string, err error) {
	secret = NewTOTPSecret()
	raw, _ := decodeTOTPSecret(secret)
	switch {
	case accessToken != "" && session != "":
		return "", "", newErr(CodeInvalidParameter, "Provide either AccessToken or Session, not both")
	case accessToken != "":
		_, u, err := p.AccessUser(ctx, accessToken)
		if err != nil {
			return "", "", err
		}
		if _, err := p.st().UpdateUser(ctx, p.cfg.ID, u.Username, func(x *store.User) error {
			x.TOTPPending = p.sealTOTP(x.Sub, raw)
			return nil
		}); err != nil {
			return "", "", internal(err)
		}
		return secret, "", nil
	case session != "":
		c, st, err := p.sessionAnyClient(ctx, session, ChallengeMFASetup)
		if err != nil {
			return "", "", err
		}
		if _, err := p.st().UpdateUser(ctx, p.cfg.ID, st.Username, func(x *store.User) error {
			x.TOTPPending = p.sealTOTP(x.Sub, raw)
			return nil
		}); err != nil {
			return "", "", internal(err)
		}
		st.Challenge = "MFA_SETUP_ASSOCIATED"
		next, err := p.newSession(ctx, c, st)
		return secret, next, err
	}
	return "", "", newErr(CodeInvalidParameter, "AccessToken or Session is required")
}

// sessionAnyClient consumes a session whatever its client (the Cognito API
// does not name the client on AssociateSoftwareToken/VerifySoftwareToken).
func (p *Pool) sessionAnyClient(ctx context.Context, raw, challenge string) (store.Client, authState, error) {
	if raw == "" || len(raw) > 1024 {
		return store.Client{}, authState{}, errBadSession()
	}
	s, err := p.st().GetSession(ctx, hashID(raw), p.now())
	if err != nil {
		return store.Client{}, authState{}, errBadSession()
	}
	c, err := p.st().GetClient(ctx, s.ClientID)
	if err != nil {
		return store.Client{}, authState{}, errBadSession()
	}
	st, err := p.takeSession(ctx, c, raw, challenge)
	return c, st, err
}

// VerifySoftwareToken completes TOTP enrolment with a first code.
func (p *Pool) VerifySoftwareToken(ctx context.Context, accessToken, session, code string) (next string, err error) {
	switch {
	case accessToken != "" && session != "":
		return "", newErr(CodeInvalidParameter, "Provide either AccessToken or Session, not both")
	case accessToken != "":
		_, u, err := p.AccessUser(ctx, accessToken)
		if err != nil {
			return "", err
		}
		err = p.verifyPending(ctx, u, false)(code)
		p.record(ctx, auditEvent("VerifySoftwareToken", "", u.Username, u.Sub, err))
		return "", err
	case session != "":
		c, st, err := p.sessionAnyClient(ctx, session, "MFA_SETUP_ASSOCIATED")
		if err != nil {
			return "", err
		}
		u, err := p.st().GetUser(ctx, p.cfg.ID, st.Username)
		if err != nil {
			return "", errBadSession()
		}
		if err := p.verifyPending(ctx, u, true)(code); err != nil {
			// Let the user retry with the same session: after a wrong
			// code as often as a sign-in's MFA code (each retry keeps the
			// session alive), after any other failure as before it.
			var ue *Error
			wrong := errors.As(err, &ue) && ue.Code == CodeEnableSoftwareToken
			if !wrong || st.Attempts+1 < maxChallengeAttempts {
				if wrong {
					st.Attempts++
				}
				if perr := p.putSession(ctx, session, c, st); perr != nil {
					return "", perr
				}
			}
			p.record(ctx, auditEvent("VerifySoftwareToken", c.ClientID, u.Username, u.Sub, err))
			return "", err
		}
		st.Challenge = "MFA_SETUP_VERIFIED"
		p.record(ctx, auditEvent("VerifySoftwareToken", c.ClientID, u.Username, u.Sub, nil))
		return p.newSession(ctx, c, st)
	}
	return "", newErr(CodeInvalidParameter, "AccessToken or Session is required")
}

// verifyPending returns a function checking code against the pending
// secret and, on success, making it the user's secret (enabled at once
// when enable is set, as during MFA_SETUP).
func (p *Pool) verifyPending(ctx context.Context, u store.User, enable bool) func(string) error {
	return func(code string) error {
		if len(u.TOTPPending) == 0 {
			return newErr(CodeInvalidParameter, "No software token is being associated; call AssociateSoftwareToken first")
		}
		if err := p.checkTOTP(ctx, u, u.TOTPPending, code); err != nil {
			var ue *Error
			if errors.As(err, &ue) && ue.Code == CodeCodeMismatch {
				return &Error{Code: CodeEnableSoftwareToken, Message: "Code mismatch and fail enable Software Token MFA", Cause: err}
			}
			return err
		}
		_, err := p.st().UpdateUser(ctx, p.cfg.ID, u.Username, func(x *store.User) error {
			x.TOTPSecret, x.TOTPPending = x.TOTPPending, nil
			if enable {
				x.TOTPEnabled, x.MFAPreferred = true, true
			}
			x.UpdatedAt = p.now()
			return nil
		})
		if err != nil {
			return internal(err)
		}
		return nil
	}
}

// SetMFAPreference enables or disables TOTP MFA for the signed-in user.
func (p *Pool) SetMFAPreference(ctx context.Context, accessToken string, enabled, preferred *bool) error {
	_, u, err := p.AccessUser(ctx, accessToken)
	if err != nil {
		return err
	}
	return p.setMFAPreference(ctx, "SetUserMFAPreference", u.Username, enabled, preferred)
}

// AdminSetMFAPreference is SetMFAPreference for an administrator
// (AdminSetUserMFAPreference), by username: UserNotFoundException for an
// unknown user, the rest as for the user.
func (p *Pool) AdminSetMFAPreference(ctx context.Context, username string, enabled, preferred *bool) error {
	return p.setMFAPreference(ctx, "AdminSetUserMFAPreference", username, enabled, preferred)
}

// setMFAPreference applies a TOTP MFA preference (nil: leave as it is) to
// username and records action; preferring TOTP turns it on. Turning TOTP
// on needs a verified software token, checked on the row being written,
// so that the answer holds for what is stored.
func (p *Pool) setMFAPreference(ctx context.Context, action, username string, enabled, preferred *bool) error {
	if enabled == nil && preferred == nil {
		_, err := p.AdminGetUser(ctx, username)
		return err
	}
	on := enabled != nil && *enabled || preferred != nil && *preferred
	if enabled != nil && !on && p.cfg.MFA == "required" {
		return newErr(CodeInvalidParameter, "MFA is required by the user pool and cannot be disabled")
	}
	u, err := p.st().UpdateUser(ctx, p.cfg.ID, username, func(x *store.User) error {
		if on && len(x.TOTPSecret) == 0 {
			return errNoSoftwareToken(*x)
		}
		if enabled != nil {
			x.TOTPEnabled = *enabled
			if !*enabled {
				x.MFAPreferred = false
			}
		}
		if preferred != nil {
			x.MFAPreferred = *preferred
			if *preferred {
				x.TOTPEnabled = true
			}
		}
		x.UpdatedAt = p.now()
		return nil
	})
	if err != nil {
		return storeErr(err, errUserNotFound)
	}
	p.record(ctx, auditEvent(action, "", u.Username, u.Sub, nil))
	return nil
}

// errNoSoftwareToken is Cognito's refusal to turn on TOTP MFA for a user
// without a verified software token: it tells a token never associated
// from one associated but not yet verified.
func errNoSoftwareToken(u store.User) *Error {
	if len(u.TOTPPending) > 0 {
		return newErr(CodeInvalidParameter, "User has not verified software token mfa")
	}
	return newErr(CodeInvalidParameter, "User has not set up software token mfa")
}

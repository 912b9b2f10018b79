package cognito_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/store"
)

const attemptLimitMsg = "Attempt limit exceeded, please try after some time."

func wantAttemptLimit(t *testing.T, what string, err error) {
	t.Helper()
	if e := wantCode(t, err, "LimitExceededException"); e.Message != attemptLimitMsg {
		t.Errorf("%s: message %q", what, e.Message)
	}
}

// codeFlow is one kind of mailed code: send asks for a new one (to addr),
// check gives one; renew, when set, runs after the clock has passed the
// limits' window (a new access token).
type codeFlow struct {
	addr  string
	send  func() error
	check func(code string) error
	renew func()
}

// checkCodeLimits asserts the per-user limits of a kind of code: wrong
// codes count across codes (10 in an hour, then even the right code is
// refused until the hour has passed), and so do requests for a code (5
// in an hour, then refused with no mail sent).
func (f *fixture) checkCodeLimits(t *testing.T, fl codeFlow) {
	t.Helper()
	send := func() string {
		t.Helper()
		if err := fl.send(); err != nil {
			t.Fatalf("asking for a code: %v", err)
		}
		return f.lastCode(fl.addr)
	}
	// Five wrong codes spend a code.
	code := send()
	for range 5 {
		wantCode(t, fl.check(wrongCode(code)), "CodeMismatchException")
	}
	wantCode(t, fl.check(code), "TooManyFailedAttemptsException")
	// A new code gives five more guesses, not a fresh start: after ten
	// wrong codes in the hour, even the right code is refused.
	code = send()
	for range 5 {
		wantCode(t, fl.check(wrongCode(code)), "CodeMismatchException")
	}
	wantAttemptLimit(t, "right code after ten wrong ones", fl.check(code))
	code = send()
	wantAttemptLimit(t, "a new code after ten wrong ones", fl.check(code))
	// Five codes an hour; a sixth request sends nothing.
	send()
	send()
	n := len(f.mails(fl.addr))
	wantAttemptLimit(t, "sixth request", fl.send())
	if m := len(f.mails(fl.addr)); m != n {
		t.Errorf("a refused request mailed a code (%d mails, want %d)", m, n)
	}
	// An hour later both limits have passed.
	f.Clock.Advance(61 * time.Minute)
	if fl.renew != nil {
		fl.renew()
	}
	if err := fl.check(send()); err != nil {
		t.Fatalf("right code after the window: %v", err)
	}
}

// ForgotPassword + ConfirmForgotPassword cannot guess a reset code five
// at a time: wrong codes and code requests are limited per user.
func TestResetCodeLimits(t *testing.T) {
	f := start(t)
	f.checkCodeLimits(t, codeFlow{addr: "bob@example.com",
		send: func() error {
			_, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")})
			return err
		},
		check: func(code string) error {
			_, err := f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"),
				Username: aws.String("bob"), ConfirmationCode: aws.String(code), Password: aws.String("Bob-New-Passw0rd")})
			return err
		}})
	if res, err := f.passwordAuth("bob", "Bob-New-Passw0rd"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("sign-in after the reset: %v", err)
	}

	// An unknown user is answered alike: requests and wrong codes reach
	// the same limits.
	for range 5 {
		if _, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("nobody")}); err != nil {
			t.Fatalf("ForgotPassword for an unknown user: %v", err)
		}
	}
	_, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("nobody")})
	wantAttemptLimit(t, "unknown user's sixth request", err)
	confirm := func() error {
		_, err := f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"),
			Username: aws.String("nobody"), ConfirmationCode: aws.String("123456"), Password: aws.String("Nobody-Passw0rd1")})
		return err
	}
	for range 5 {
		wantCode(t, confirm(), "CodeMismatchException")
	}
	wantCode(t, confirm(), "TooManyFailedAttemptsException") // as a real code's sixth guess
}

// Guesses at no code (none was sent) cannot lock a user out: after a
// dozen of them for bob (answered as for an unknown user), his own reset
// code still works.
func TestBlindGuessesDoNotLockOut(t *testing.T) {
	f := start(t)
	confirm := func(code, pw string) error {
		_, err := f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"),
			Username: aws.String("bob"), ConfirmationCode: aws.String(code), Password: aws.String(pw)})
		return err
	}
	for i := range 12 {
		want := "CodeMismatchException"
		if i >= 5 {
			want = "TooManyFailedAttemptsException"
		}
		wantCode(t, confirm("123456", "Bob-New-Passw0rd"), want)
	}
	if _, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	code := f.lastCode("bob@example.com")
	if err := confirm(code, "Bob-New-Passw0rd"); err != nil {
		t.Fatalf("bob's own code after a stranger's blind guesses: %v", err)
	}
}

// GetUserAttributeVerificationCode + VerifyUserAttribute have the same
// limits.
func TestVerificationCodeLimits(t *testing.T) {
	f := start(t)
	var at *string
	signIn := func() {
		res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
		if err != nil {
			t.Fatal(err)
		}
		at = res.AuthenticationResult.AccessToken
	}
	signIn()
	if _, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: at,
		UserAttributes: []types.AttributeType{attr("email", "robert@example.org")}}); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(61 * time.Minute) // the change's code is not part of the test
	signIn()
	f.checkCodeLimits(t, codeFlow{addr: "robert@example.org", renew: signIn,
		send: func() error {
			_, err := f.c.GetUserAttributeVerificationCode(f.ctx, &cip.GetUserAttributeVerificationCodeInput{AccessToken: at, AttributeName: aws.String("email")})
			return err
		},
		check: func(code string) error {
			_, err := f.c.VerifyUserAttribute(f.ctx, &cip.VerifyUserAttributeInput{AccessToken: at, AttributeName: aws.String("email"), Code: aws.String(code)})
			return err
		}})
	if a := f.userAttrs(at); a["email_verified"] != "true" {
		t.Errorf("after verifying: %v", a)
	}
}

// ResendConfirmationCode + ConfirmSignUp have the same limits.
func TestConfirmationCodeLimits(t *testing.T) {
	f := start(t)
	if _, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"),
		Password: aws.String("Carol-Passw0rd"), UserAttributes: []types.AttributeType{attr("email", "carol@example.com")}}); err != nil {
		t.Fatal(err)
	}
	f.checkCodeLimits(t, codeFlow{addr: "carol@example.com",
		send: func() error {
			_, err := f.c.ResendConfirmationCode(f.ctx, &cip.ResendConfirmationCodeInput{ClientId: aws.String("demo-web"), Username: aws.String("carol")})
			return err
		},
		check: func(code string) error {
			_, err := f.c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"), ConfirmationCode: aws.String(code)})
			return err
		}})
	if res, err := f.passwordAuth("carol", "Carol-Passw0rd"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("sign-in after confirmation: %v", err)
	}
}

// The code an email change in the NEW_PASSWORD_REQUIRED challenge mails
// counts toward the limit on verification codes. Past the limit the
// response is refused as UpdateUserAttributes is (LimitExceededException),
// changing and mailing nothing; the session then answers without the
// change.
func TestNewPasswordChallengeEmailChangeCodeLimit(t *testing.T) {
	f := start(t)
	respond := func(user string, session *string, pw, email string) (*cip.RespondToAuthChallengeOutput, error) {
		r := map[string]string{"USERNAME": user, "NEW_PASSWORD": pw}
		if email != "" {
			r["userAttributes.email"] = email
		}
		return f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
			ChallengeName: types.ChallengeNameTypeNewPasswordRequired, Session: session, ChallengeResponses: r})
	}
	codeFor := func(at *string) error {
		_, err := f.c.GetUserAttributeVerificationCode(f.ctx, &cip.GetUserAttributeVerificationCodeInput{AccessToken: at, AttributeName: aws.String("email")})
		return err
	}
	// The challenge's code is the first of five.
	f.createInvited("ivy", "Temp-Passw0rd1", attr("email", "ivy@example.com"), attr("email_verified", "true"))
	out, err := f.passwordAuth("ivy", "Temp-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := respond("ivy", out.Session, "Ivy-Passw0rd12", "ivy@example.org")
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("new password: %v", err)
	}
	for range 4 {
		if err := codeFor(r.AuthenticationResult.AccessToken); err != nil {
			t.Fatalf("asking for a code: %v", err)
		}
	}
	wantAttemptLimit(t, "sixth code", codeFor(r.AuthenticationResult.AccessToken))

	// Bob spends his five codes, then gets a temporary password.
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: res.AuthenticationResult.AccessToken,
		UserAttributes: []types.AttributeType{attr("email", "robert@example.org")}}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := codeFor(res.AuthenticationResult.AccessToken); err != nil {
			t.Fatalf("asking for a code: %v", err)
		}
	}
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	if _, err := adm.AdminSetUserPassword(f.ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(poolID), Username: aws.String("bob"),
		Password: aws.String("Temp-Passw0rd1")}); err != nil {
		t.Fatal(err)
	}
	out, err = f.passwordAuth("bob", "Temp-Passw0rd1")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("want NEW_PASSWORD_REQUIRED: %v", err)
	}
	_, err = respond("bob", out.Session, "Bob-New-Passw0rd1", "bob@example.net")
	wantAttemptLimit(t, "email change past the limit", err)
	if n := len(f.mails("bob@example.net")); n != 0 {
		t.Errorf("a refused change mailed %d codes", n)
	}
	if u, _ := f.App.Core.Store.GetUser(f.ctx, poolID, "bob"); u.Email != "robert@example.org" || u.Status != store.StatusForceChangePassword {
		t.Errorf("a refused response changed the user: %s %s", u.Email, u.Status)
	}
	r, err = respond("bob", out.Session, "Bob-New-Passw0rd1", "")
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("new password without the change: %v", err)
	}
	if a := f.userAttrs(r.AuthenticationResult.AccessToken); a["email"] != "robert@example.org" {
		t.Errorf("after the challenge: %v", a)
	}
}

package cognito_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/store"
)

// clientFrom returns an SDK client whose connections come from the
// loopback address ip (such as 127.0.0.2): another source address than
// the fixture's client, which connects from 127.0.0.1.
func (f *fixture) clientFrom(ip string) *cip.Client {
	f.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	f.t.Cleanup(tr.CloseIdleConnections)
	return cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.IDP)),
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1, HTTPClient: &http.Client{Transport: tr}})
}

// wantSourceLimit asserts err is the per-source throttle's refusal.
func wantSourceLimit(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: want TooManyRequestsException, got success", what)
	}
	wantCode(t, err, "TooManyRequestsException")
}

// sourceLimit is the default per-source limit on code requests and on
// codes given, each within 15 minutes.
const sourceLimit = 100

// One address spraying ForgotPassword over many usernames (mail bombing,
// or spending every user's five codes an hour) is stopped after 100
// requests in 15 minutes, for known and unknown users alike. Past the
// limit the code requests of every kind (ForgotPassword,
// ResendConfirmationCode, SignUp, GetUserAttributeVerificationCode) are
// refused, sending nothing and counting nothing toward the users' own
// limits; another address, the admin operations and, after the window,
// the same address are unaffected.
func TestCodeRequestsLimitedPerSource(t *testing.T) {
	f := start(t)
	forgot := func(c *cip.Client, user string) error {
		_, err := c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String(user)})
		return err
	}
	// bob gets a code; then 99 usernames nobody has, each asked once.
	if err := forgot(f.c, "bob"); err != nil {
		t.Fatal(err)
	}
	for i := range sourceLimit - 1 {
		if err := forgot(f.c, fmt.Sprintf("nobody-%d", i)); err != nil {
			t.Fatalf("request %d: %v", i+2, err)
		}
	}
	if n := len(f.mails("bob@example.com")); n != 1 {
		t.Fatalf("bob has %d mails, want 1", n)
	}
	wantSourceLimit(t, "ForgotPassword for a known user", forgot(f.c, "bob"))
	wantSourceLimit(t, "ForgotPassword for an unknown user", forgot(f.c, "nobody-new"))
	wantSourceLimit(t, "ForgotPassword for another user", forgot(f.c, "alice"))
	_, err := f.c.ResendConfirmationCode(f.ctx, &cip.ResendConfirmationCodeInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")})
	wantSourceLimit(t, "ResendConfirmationCode", err)
	_, err = f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("dora"),
		Password: aws.String("Dora-Passw0rd1"), UserAttributes: []types.AttributeType{attr("email", "dora@example.com")}})
	wantSourceLimit(t, "SignUp", err)
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "dora"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused sign-up created the user (%v)", err)
	}
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1") // sign-in has its own throttle
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.c.GetUserAttributeVerificationCode(f.ctx, &cip.GetUserAttributeVerificationCodeInput{
		AccessToken: res.AuthenticationResult.AccessToken, AttributeName: aws.String("email")})
	wantSourceLimit(t, "GetUserAttributeVerificationCode", err)
	_, err = f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: res.AuthenticationResult.AccessToken,
		UserAttributes: []types.AttributeType{attr("email", "bob.new@example.com")}})
	wantSourceLimit(t, "UpdateUserAttributes changing the email address", err)
	if u, _ := f.App.Core.Store.GetUser(f.ctx, poolID, "bob"); u.Email != "bob@example.com" || len(f.mails("bob.new@example.com")) != 0 {
		t.Errorf("a refused email change: %s, %d mails", u.Email, len(f.mails("bob.new@example.com")))
	}
	for _, addr := range []string{"bob@example.com", "alice@example.com", "dora@example.com"} {
		want := 0
		if addr == "bob@example.com" {
			want = 1
		}
		if n := len(f.mails(addr)); n != want {
			t.Errorf("%s: %d mails after the refusals, want %d", addr, n, want)
		}
	}

	// Another address is not limited, and the refused requests did not
	// count toward bob's five codes an hour: four more, then his limit.
	other := f.clientFrom("127.0.0.2")
	for i := range 4 {
		if err := forgot(other, "bob"); err != nil {
			t.Fatalf("bob's code %d from another address: %v", i+2, err)
		}
	}
	wantAttemptLimit(t, "bob's sixth code", forgot(other, "bob"))
	if n := len(f.mails("bob@example.com")); n != 5 {
		t.Errorf("bob has %d mails, want 5", n)
	}
	if err := forgot(other, "alice"); err != nil || len(f.mails("alice@example.com")) != 1 {
		t.Errorf("alice's code from another address: %v, %d mails", err, len(f.mails("alice@example.com")))
	}

	// The admin operations are not limited per source.
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	if _, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: aws.String(poolID), Username: aws.String("erin"),
		UserAttributes: []types.AttributeType{attr("email", "erin@example.com"), attr("email_verified", "true")}}); err != nil {
		t.Fatalf("AdminCreateUser from the limited address: %v", err)
	}
	if n := len(f.mails("erin@example.com")); n != 1 {
		t.Errorf("erin's invitation: %d mails", n)
	}

	// After the window the address may ask again.
	f.Clock.Advance(16 * time.Minute)
	if err := forgot(f.c, "alice"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if n := len(f.mails("alice@example.com")); n != 2 {
		t.Errorf("alice has %d mails, want 2", n)
	}
}

// One address guessing codes across many users (ConfirmSignUp,
// ConfirmForgotPassword, VerifyUserAttribute share the limit) is stopped
// after 100 codes in 15 minutes, for known and unknown users alike. Past
// the limit even a right code is refused, and the refusal leaves the
// code and the user's counters alone: the right code still works from
// another address.
func TestCodeGuessesLimitedPerSource(t *testing.T) {
	f := start(t)
	other := f.clientFrom("127.0.0.2")
	confirmSignUp := func(c *cip.Client, user, code string) error {
		_, err := c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: aws.String("demo-web"), Username: aws.String(user), ConfirmationCode: aws.String(code)})
		return err
	}
	confirmForgot := func(c *cip.Client, user, code string) error {
		_, err := c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"),
			Username: aws.String(user), ConfirmationCode: aws.String(code), Password: aws.String("New-Passw0rd12")})
		return err
	}
	// carol signs up and bob asks for a reset code, from another address.
	if _, err := other.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"),
		Password: aws.String("Carol-Passw0rd"), UserAttributes: []types.AttributeType{attr("email", "carol@example.com")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	carolCode, bobCode := f.lastCode("carol@example.com"), f.lastCode("bob@example.com")
	bob, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}

	// From the fixture's address: four wrong codes each for carol and bob
	// (one short of spending their codes), then guesses for usernames
	// nobody has, up to 100 codes given.
	for range 4 {
		wantCode(t, confirmSignUp(f.c, "carol", wrongCode(carolCode)), "CodeMismatchException")
		wantCode(t, confirmForgot(f.c, "bob", wrongCode(bobCode)), "CodeMismatchException")
	}
	for i := range sourceLimit - 8 {
		user := fmt.Sprintf("nobody-%d", i)
		if i%2 == 0 {
			wantCode(t, confirmSignUp(f.c, user, "123456"), "CodeMismatchException")
		} else {
			wantCode(t, confirmForgot(f.c, user, "123456"), "CodeMismatchException")
		}
	}
	wantSourceLimit(t, "ConfirmSignUp with the right code", confirmSignUp(f.c, "carol", carolCode))
	wantSourceLimit(t, "ConfirmForgotPassword with the right code", confirmForgot(f.c, "bob", bobCode))
	wantSourceLimit(t, "ConfirmSignUp for an unknown user", confirmSignUp(f.c, "nobody-new", "123456"))
	wantSourceLimit(t, "ConfirmForgotPassword for an unknown user", confirmForgot(f.c, "nobody-new", "123456"))
	_, err = f.c.VerifyUserAttribute(f.ctx, &cip.VerifyUserAttributeInput{AccessToken: bob.AuthenticationResult.AccessToken,
		AttributeName: aws.String("email"), Code: aws.String("123456")})
	wantSourceLimit(t, "VerifyUserAttribute", err)
	if u, _ := f.App.Core.Store.GetUser(f.ctx, poolID, "carol"); u.Status != store.StatusUnconfirmed {
		t.Errorf("a refused confirmation changed carol: %s", u.Status)
	}

	// From another address the right codes work: the refusals did not
	// count toward the codes' five attempts (four were wrong).
	if err := confirmSignUp(other, "carol", carolCode); err != nil {
		t.Fatalf("carol's code from another address: %v", err)
	}
	if err := confirmForgot(other, "bob", bobCode); err != nil {
		t.Fatalf("bob's code from another address: %v", err)
	}
	if res, err := f.passwordAuth("bob", "New-Passw0rd12"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("bob with his new password: %v", err)
	}

	// After the window the address may give codes again.
	f.Clock.Advance(16 * time.Minute)
	wantCode(t, confirmSignUp(f.c, "nobody-new", "123456"), "CodeMismatchException")
}

package cognito_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// ForgotPassword sends a code only to a verified email address; without
// one it answers as Cognito does, and an unknown user still gets a
// look-alike answer.
func TestForgotPasswordNeedsVerifiedEmail(t *testing.T) {
	f := start(t)
	forgot := func(user string) error {
		_, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String(user)})
		return err
	}
	const msg = "Cannot reset password for the user as there is no registered/verified email or phone_number"
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: res.AuthenticationResult.AccessToken,
		UserAttributes: []types.AttributeType{attr("email", "bob.new@example.com")}}); err != nil {
		t.Fatal(err)
	}
	if e := wantCode(t, forgot("bob"), "InvalidParameterException"); e.Message != msg {
		t.Errorf("message %q", e.Message)
	}
	// The new address gets its verification code, and no reset code.
	for _, m := range append(f.mails("bob.new@example.com"), f.mails("bob@example.com")...) {
		if strings.Contains(m, "reset") {
			t.Errorf("reset mail sent for an unverified address: %q", m)
		}
	}
	// A user with no email at all.
	f.createInvited("noemail", "Temp-Passw0rd1")
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	if _, err := adm.AdminSetUserPassword(f.ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(poolID), Username: aws.String("noemail"),
		Password: aws.String("Noemail-Passw0rd1"), Permanent: true}); err != nil {
		t.Fatal(err)
	}
	if e := wantCode(t, forgot("noemail"), "InvalidParameterException"); e.Message != msg {
		t.Errorf("message %q", e.Message)
	}
	if err := forgot("nobody"); err != nil {
		t.Errorf("unknown user: %v", err)
	}
	if err := forgot("alice"); err != nil || len(f.mails("alice@example.com")) != 1 {
		t.Errorf("verified user: %v", err)
	}
}

// Re-enrolling TOTP in the same 30-second step as a sign-in with the old
// secret accepts the new secret's code: replay protection is per secret.
func TestReEnrolTOTPInSameStep(t *testing.T) {
	f := start(t)
	r, err := f.respondMFA("alice", f.mfaChallenge(), f.totp(aliceSecret))
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("sign-in: %v", err)
	}
	at := r.AuthenticationResult.AccessToken
	assoc, err := f.c.AssociateSoftwareToken(f.ctx, &cip.AssociateSoftwareTokenInput{AccessToken: at})
	if err != nil {
		t.Fatal(err)
	}
	secret := aws.ToString(assoc.SecretCode)
	code := f.totp(secret)
	if v, err := f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{AccessToken: at, UserCode: aws.String(code)}); err != nil ||
		v.Status != types.VerifySoftwareTokenResponseTypeSuccess {
		t.Fatalf("VerifySoftwareToken in the step of the last sign-in: %v", err)
	}
	// The new secret's code is spent for its step; the next step's works.
	_, err = f.respondMFA("alice", f.mfaChallenge(), code)
	wantCode(t, err, "CodeMismatchException")
	f.Clock.Advance(30 * time.Second)
	if r, err := f.respondMFA("alice", f.mfaChallenge(), f.totp(secret)); err != nil || r.AuthenticationResult == nil {
		t.Fatalf("sign-in with the new secret: %v", err)
	}
}

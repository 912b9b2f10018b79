package cognito_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// ForgotPassword sends a code only to an enabled user's verified email
// address; every other user (unknown, without a verified address,
// disabled) gets an answer of the same shape, with a masked destination
// that is the same for the same username, and no mail is sent.
func TestForgotPasswordLooksAlikeForEveryUser(t *testing.T) {
	f := start(t)
	forgot := func(user string) string {
		t.Helper()
		out, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String(user)})
		if err != nil {
			t.Fatalf("ForgotPassword %s: %v", user, err)
		}
		d := out.CodeDeliveryDetails
		if d == nil || !maskRE.MatchString(aws.ToString(d.Destination)) || d.DeliveryMedium != types.DeliveryMediumTypeEmail ||
			aws.ToString(d.AttributeName) != "email" {
			t.Fatalf("ForgotPassword %s: %+v", user, d)
		}
		return aws.ToString(d.Destination)
	}
	// A real send.
	if d := forgot("alice"); d != "a***@e***" || len(f.mails("alice@example.com")) != 1 {
		t.Fatalf("verified user: %s, %d mails", d, len(f.mails("alice@example.com")))
	}
	// An unverified address.
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: res.AuthenticationResult.AccessToken,
		UserAttributes: []types.AttributeType{attr("email", "bob.new@example.com")}}); err != nil {
		t.Fatal(err)
	}
	bob := forgot("bob")
	// No email at all.
	f.createInvited("noemail", "Temp-Passw0rd1")
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	if _, err := adm.AdminSetUserPassword(f.ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(poolID), Username: aws.String("noemail"),
		Password: aws.String("Noemail-Passw0rd1"), Permanent: true}); err != nil {
		t.Fatal(err)
	}
	forgot("noemail")
	// A disabled user with a verified address.
	f.createInvited("dina", "Temp-Passw0rd1", attr("email", "dina@example.com"), attr("email_verified", "true"))
	if _, err := adm.AdminDisableUser(f.ctx, &cip.AdminDisableUserInput{UserPoolId: aws.String(poolID), Username: aws.String("dina")}); err != nil {
		t.Fatal(err)
	}
	forgot("dina")
	// Unknown users.
	nobody := forgot("nobody")
	if again := forgot("nobody"); again != nobody {
		t.Errorf("the same unknown user got %s, then %s", nobody, again)
	}
	if again := forgot("bob"); again != bob {
		t.Errorf("the same unverified user got %s, then %s", bob, again)
	}
	masks := map[string]bool{}
	for _, u := range []string{"nobody-1", "nobody-2", "nobody-3", "nobody-4", "nobody-5", "nobody-6"} {
		masks[forgot(u)] = true
	}
	if len(masks) < 2 {
		t.Errorf("six unknown users got one mask: %v", masks)
	}
	// Nothing was mailed but alice's code.
	for _, addr := range []string{"bob.new@example.com", "bob@example.com", "dina@example.com"} {
		for _, m := range f.mails(addr) {
			if strings.Contains(m, "reset") {
				t.Errorf("reset mail sent to %s: %q", addr, m)
			}
		}
	}
}

var maskRE = regexp.MustCompile(`^[a-z]\*\*\*@[a-z]\*\*\*$`)

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

// TestConfirmForgotPasswordLooksAlike: ConfirmForgotPassword for a user
// with no reset code pending answers as for an unknown user, so that it
// does not tell the account exists.
func TestConfirmForgotPasswordLooksAlike(t *testing.T) {
	f := start(t)
	confirm := func(user string) error {
		_, err := f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String(user),
			ConfirmationCode: aws.String("123456"), Password: aws.String("Some-New-Passw0rd")})
		return err
	}
	known, unknown := wantCode(t, confirm("bob"), "CodeMismatchException"), wantCode(t, confirm("nobody-at-all"), "CodeMismatchException")
	if known.Message != unknown.Message {
		t.Errorf("messages differ: %q and %q", known.Message, unknown.Message)
	}
}

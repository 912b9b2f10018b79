package cognito_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// userAttrs returns the attributes GetUser lists for an access token.
func (f *fixture) userAttrs(at *string) map[string]string {
	f.t.Helper()
	u, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: at})
	if err != nil {
		f.t.Fatalf("GetUser: %v", err)
	}
	m := map[string]string{}
	for _, a := range u.UserAttributes {
		m[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	return m
}

// Changing the email address mails a code to the new address, which
// VerifyUserAttribute takes to mark it verified; a wrong, used or expired
// code is refused.
func TestEmailChangeVerification(t *testing.T) {
	f := start(t)
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	at := res.AuthenticationResult.AccessToken
	up, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: at,
		UserAttributes: []types.AttributeType{attr("email", "robert@example.org")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.CodeDeliveryDetailsList) != 1 {
		t.Fatalf("CodeDeliveryDetailsList: %+v", up.CodeDeliveryDetailsList)
	}
	if d := up.CodeDeliveryDetailsList[0]; aws.ToString(d.Destination) != "r***@e***" || d.DeliveryMedium != types.DeliveryMediumTypeEmail ||
		aws.ToString(d.AttributeName) != "email" {
		t.Errorf("delivery: %s %s %s", aws.ToString(d.Destination), d.DeliveryMedium, aws.ToString(d.AttributeName))
	}
	if a := f.userAttrs(at); a["email"] != "robert@example.org" || a["email_verified"] != "false" {
		t.Fatalf("after the change: %v", a)
	}
	code := f.lastCode("robert@example.org")
	verify := func(code string) error {
		_, err := f.c.VerifyUserAttribute(f.ctx, &cip.VerifyUserAttributeInput{AccessToken: at, AttributeName: aws.String("email"), Code: aws.String(code)})
		return err
	}
	wantCode(t, verify(wrongCode(code)), "CodeMismatchException")
	if err := verify(code); err != nil {
		t.Fatalf("VerifyUserAttribute: %v", err)
	}
	if a := f.userAttrs(at); a["email_verified"] != "true" {
		t.Fatalf("after verifying: %v", a)
	}
	wantCode(t, verify(code), "CodeMismatchException") // used up: no code pending

	// Other attributes send nothing.
	up, err = f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: at,
		UserAttributes: []types.AttributeType{attr("name", "Robert"), attr("email", "robert@example.org")}})
	if err != nil || len(up.CodeDeliveryDetailsList) != 0 {
		t.Fatalf("unchanged email: %v %+v", err, up)
	}
	if n := len(f.mails("robert@example.org")); n != 1 {
		t.Errorf("%d mails to the address, want 1", n)
	}

	// GetUserAttributeVerificationCode sends a new code; it expires.
	gc, err := f.c.GetUserAttributeVerificationCode(f.ctx, &cip.GetUserAttributeVerificationCodeInput{AccessToken: at, AttributeName: aws.String("email")})
	if err != nil || gc.CodeDeliveryDetails == nil || aws.ToString(gc.CodeDeliveryDetails.Destination) != "r***@e***" {
		t.Fatalf("GetUserAttributeVerificationCode: %v %+v", err, gc)
	}
	code = f.lastCode("robert@example.org")
	f.Clock.Advance(25 * time.Hour)
	res, err = f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	at = res.AuthenticationResult.AccessToken
	wantCode(t, verify(code), "ExpiredCodeException")

	// A code for an earlier address does not verify a later one.
	if _, err := f.c.GetUserAttributeVerificationCode(f.ctx, &cip.GetUserAttributeVerificationCodeInput{AccessToken: at, AttributeName: aws.String("email")}); err != nil {
		t.Fatal(err)
	}
	old := f.lastCode("robert@example.org")
	if _, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: at,
		UserAttributes: []types.AttributeType{attr("email", "bob@example.net")}}); err != nil {
		t.Fatal(err)
	}
	if code := f.lastCode("bob@example.net"); code != old {
		wantCode(t, verify(old), "CodeMismatchException")
	}
	if _, err := f.c.GetUserAttributeVerificationCode(f.ctx, &cip.GetUserAttributeVerificationCodeInput{AccessToken: at, AttributeName: aws.String("email")}); err != nil {
		t.Fatal(err)
	}
	code = f.lastCode("bob@example.net")

	// Wrong codes are limited, as for ConfirmSignUp: past the limit even
	// the right code is refused.
	for i := 0; i < 5; i++ {
		wantCode(t, verify(wrongCode(code)), "CodeMismatchException")
	}
	wantCode(t, verify(code), "TooManyFailedAttemptsException")
	if a := f.userAttrs(at); a["email"] != "bob@example.net" || a["email_verified"] != "false" {
		t.Fatalf("after refused codes: %v", a)
	}
	// A new code starts over.
	if _, err := f.c.GetUserAttributeVerificationCode(f.ctx, &cip.GetUserAttributeVerificationCodeInput{AccessToken: at, AttributeName: aws.String("email")}); err != nil {
		t.Fatal(err)
	}
	if err := verify(f.lastCode("bob@example.net")); err != nil {
		t.Fatalf("VerifyUserAttribute with a new code: %v", err)
	}
	res, err = f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	var id map[string]any
	decode(t, aws.ToString(res.AuthenticationResult.IdToken), &id)
	if id["email"] != "bob@example.net" || id["email_verified"] != true {
		t.Errorf("ID token: email %v verified %v", id["email"], id["email_verified"])
	}

	// Only email can be verified; a missing access token is refused.
	_, err = f.c.GetUserAttributeVerificationCode(f.ctx, &cip.GetUserAttributeVerificationCodeInput{AccessToken: at, AttributeName: aws.String("phone_number")})
	wantCode(t, err, "InvalidParameterException")
	_, err = f.c.VerifyUserAttribute(f.ctx, &cip.VerifyUserAttributeInput{AccessToken: aws.String("x.y.z"), AttributeName: aws.String("email"), Code: aws.String("123456")})
	wantCode(t, err, "NotAuthorizedException")
}

package cognito_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

// createInvited creates a user with a temporary password through
// AdminCreateUser (no message sent).
func (f *fixture) createInvited(username, tempPassword string, attrs ...types.AttributeType) {
	f.t.Helper()
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	if _, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: aws.String(poolID), Username: aws.String(username),
		TemporaryPassword: aws.String(tempPassword), MessageAction: types.MessageActionTypeSuppress, UserAttributes: attrs}); err != nil {
		f.t.Fatalf("AdminCreateUser %s: %v", username, err)
	}
}

func attr(name, value string) types.AttributeType {
	return types.AttributeType{Name: aws.String(name), Value: aws.String(value)}
}

// The NEW_PASSWORD_REQUIRED challenge lets the user set attributes under
// the rules of UpdateUserAttributes: none of cognito:*, the verification
// flags, unknown names or oversized values; a refusal changes nothing.
func TestNewPasswordChallengeAttributes(t *testing.T) {
	f := start(t)
	f.createInvited("henry", "Temp-Passw0rd1", attr("email", "henry@example.com"))
	out, err := f.passwordAuth("henry", "Temp-Passw0rd1")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("want NEW_PASSWORD_REQUIRED: %v %q", err, out.ChallengeName)
	}
	respond := func(attrs map[string]string) (*cip.RespondToAuthChallengeOutput, error) {
		r := map[string]string{"USERNAME": "henry", "NEW_PASSWORD": "Henry-Passw0rd1"}
		for k, v := range attrs {
			r["userAttributes."+k] = v
		}
		return f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
			ChallengeName: types.ChallengeNameTypeNewPasswordRequired, Session: out.Session, ChallengeResponses: r})
	}
	for _, c := range []struct {
		name, value, code string
	}{
		{"cognito:preferred_role", "arn:aws:iam::000000000000:role/demo-staff", "InvalidParameterException"},
		{"cognito:groups", "staff", "InvalidParameterException"},
		{"phone_number_verified", "true", "NotAuthorizedException"},
		{"email_verified", "true", "NotAuthorizedException"},
		{"sub", "forged", "NotAuthorizedException"},
		{"no_such_attribute", "x", "InvalidParameterException"},
		{"custom:department", strings.Repeat("x", 200<<10), "InvalidParameterException"},
	} {
		// With an allowed attribute beside it: nothing at all is written.
		_, err := respond(map[string]string{c.name: c.value, "name": "Henry"})
		if e := wantCode(t, err, c.code); c.code == "NotAuthorizedException" && e.Message != "A client attempted to write unauthorized attribute" {
			t.Errorf("%s: message %q", c.name, e.Message)
		}
	}
	u, err := f.App.Core.Store.GetUser(f.ctx, poolID, "henry")
	if err != nil {
		t.Fatal(err)
	}
	if u.Status != store.StatusForceChangePassword || len(u.Attributes) != 0 || u.EmailVerified {
		t.Fatalf("refused challenge responses changed the user: %s %v verified=%t", u.Status, u.Attributes, u.EmailVerified)
	}
	// The session survives the refusals; a proper answer signs in.
	r, err := respond(map[string]string{"name": "Henry"})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("new password: %v", err)
	}
	var id map[string]any
	decode(t, aws.ToString(r.AuthenticationResult.IdToken), &id)
	for _, k := range []string{"cognito:preferred_role", "cognito:groups", "cognito:roles", "phone_number_verified"} {
		if v, ok := id[k]; ok {
			t.Errorf("ID token carries %s = %v", k, v)
		}
	}
	if id["name"] != "Henry" || id["email_verified"] != false {
		t.Errorf("ID token: %v", id)
	}

	// Defense in depth: attributes stored under reserved names (by an
	// older version, or by hand) never reach a token or userInfo.
	if _, err := f.App.Core.Store.UpdateUser(f.ctx, poolID, "henry", func(u *store.User) error {
		for k, v := range map[string]string{"cognito:preferred_role": "arn:aws:iam::000000000000:role/demo-staff",
			"cognito:groups": "staff", "sub": "forged", "token_use": "access", "aud": "other-client", "iss": "https://evil.example",
			"exp": "99999999999", "auth_time": "1", "origin_jti": "x", "event_id": "x", "jti": "x"} {
			u.Attributes[k] = v
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res, err := f.passwordAuth("henry", "Henry-Passw0rd1")
	if err != nil || res.AuthenticationResult == nil {
		t.Fatalf("sign-in: %v", err)
	}
	id = nil
	decode(t, aws.ToString(res.AuthenticationResult.IdToken), &id)
	if _, ok := id["cognito:preferred_role"]; ok {
		t.Errorf("stored cognito:preferred_role reached the ID token: %v", id["cognito:preferred_role"])
	}
	if _, ok := id["cognito:groups"]; ok {
		t.Errorf("stored cognito:groups reached the ID token: %v", id["cognito:groups"])
	}
	if id["sub"] != u.Sub || id["token_use"] != "id" || id["aud"] != "demo-web" || id["iss"] != f.issuer() || id["jti"] == "x" ||
		id["origin_jti"] == "x" || id["event_id"] == "x" || id["auth_time"] == "1" || id["exp"] == "99999999999" {
		t.Errorf("stored attributes overrode protocol claims: %v", id)
	}
}

// An email address changed in the NEW_PASSWORD_REQUIRED challenge is
// unverified and gets a verification code, as with UpdateUserAttributes.
func TestNewPasswordChallengeEmailChangeSendsCode(t *testing.T) {
	f := start(t)
	f.createInvited("ivy", "Temp-Passw0rd1", attr("email", "ivy@example.com"), attr("email_verified", "true"))
	out, err := f.passwordAuth("ivy", "Temp-Passw0rd1")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("want NEW_PASSWORD_REQUIRED: %v", err)
	}
	r, err := f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: types.ChallengeNameTypeNewPasswordRequired, Session: out.Session, ChallengeResponses: map[string]string{
			"USERNAME": "ivy", "NEW_PASSWORD": "Ivy-Passw0rd12", "userAttributes.email": "ivy@example.org"}})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("new password: %v", err)
	}
	at := r.AuthenticationResult.AccessToken
	if a := f.userAttrs(at); a["email"] != "ivy@example.org" || a["email_verified"] != "false" {
		t.Fatalf("after the challenge: %v", a)
	}
	code := f.lastCode("ivy@example.org")
	if _, err := f.c.VerifyUserAttribute(f.ctx, &cip.VerifyUserAttributeInput{AccessToken: at, AttributeName: aws.String("email"),
		Code: aws.String(code)}); err != nil {
		t.Fatalf("VerifyUserAttribute with the mailed code: %v", err)
	}
	if a := f.userAttrs(at); a["email_verified"] != "true" {
		t.Errorf("after verifying: %v", a)
	}
}

// Seed users' attributes are set as the admin API sets them: a
// verification flag in any case is stored lower-case (and so true in the
// ID token), and a phone number without a flag is unverified.
func TestSeedAttributesAsTheAPISetsThem(t *testing.T) {
	f := start(t, func(c *config.Config) {
		c.UserPools[0].Users = append(c.UserPools[0].Users,
			config.User{Username: "pat", Password: config.NewSecret("Pat-Passw0rd1"),
				Attributes: map[string]string{"phone_number": "+15555550100", "phone_number_verified": "True"}},
			config.User{Username: "sam", Password: config.NewSecret("Sam-Passw0rd1"),
				Attributes: map[string]string{"phone_number": "+15555550101"}})
	})
	adm := f.admin()
	for user, want := range map[string]string{"pat": "true", "sam": "false"} {
		out, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: aws.String(poolID), Username: aws.String(user)})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, a := range out.UserAttributes {
			if aws.ToString(a.Name) == "phone_number_verified" {
				got = aws.ToString(a.Value)
			}
		}
		if got != want {
			t.Errorf("%s: phone_number_verified %q, want %q", user, got, want)
		}
	}
	res, err := f.passwordAuth("pat", "Pat-Passw0rd1")
	if err != nil || res.AuthenticationResult == nil {
		t.Fatalf("pat signs in: %v", err)
	}
	var id map[string]any
	decode(t, aws.ToString(res.AuthenticationResult.IdToken), &id)
	if id["phone_number_verified"] != true {
		t.Errorf("ID token phone_number_verified = %v, want true", id["phone_number_verified"])
	}
}

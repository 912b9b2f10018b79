package cognito_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/store"
)

// Usernames, attribute values and passwords are checked as Cognito checks
// them, counting characters, not bytes.
func TestInputValidation(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	signUp := func(user, pw string, attrs ...types.AttributeType) error {
		_, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String(user), Password: aws.String(pw),
			UserAttributes: attrs})
		return err
	}
	create := func(user string) error {
		_, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String(user),
			MessageAction: types.MessageActionTypeSuppress})
		return err
	}
	// Usernames: letters, marks, symbols, numbers and punctuation, up to
	// 128 characters.
	for _, u := range []string{"nul\x00byte", "bell\x07", "zero\u200bwidth", "bom\ufeff", "soft\u00adhyphen", "tab\tname", "two words",
		"nbsp\u00a0name", "line\u2028sep", strings.Repeat("é", 129), strings.Repeat("a", 129)} {
		wantCode(t, signUp(u, "Valid-Passw0rd1"), "InvalidParameterException")
		wantCode(t, create(u), "InvalidParameterException")
	}
	for i, u := range []string{strings.Repeat("é", 128), "o'neil/ops", "ünïcödé", "user😀", "日本語ユーザー", "a+b@example.com"} {
		if i%2 == 0 {
			if err := signUp(u, "Valid-Passw0rd1"); err != nil {
				t.Errorf("SignUp %q: %v", u, err)
			}
		} else if err := create(u); err != nil {
			t.Errorf("AdminCreateUser %q: %v", u, err)
		}
	}

	// Attribute values: up to 2048 characters.
	if err := signUp("val1", "Valid-Passw0rd1", attr("name", strings.Repeat("é", 2048))); err != nil {
		t.Errorf("2048-character value: %v", err)
	}
	wantCode(t, signUp("val2", "Valid-Passw0rd1", attr("name", strings.Repeat("é", 2049))), "InvalidParameterException")

	// Passwords: up to 256 characters, no whitespace at either end.
	long := "Aa1" + strings.Repeat("é", 253)
	if err := signUp("pw1", long); err != nil {
		t.Errorf("256-character password: %v", err)
	}
	for _, pw := range []string{long + "é", " Valid-Passw0rd1", "Valid-Passw0rd1 ", "\tValid-Passw0rd1", "Valid-Passw0rd1\n"} {
		wantCode(t, signUp("pw2", pw), "InvalidParameterException")
	}
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "pw2"); err == nil {
		t.Error("a refused sign-up created the user")
	}
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{" Bob-New-Passw0rd", "Bob-New-Passw0rd ", "Aa1" + strings.Repeat("x", 254)} {
		_, err = f.c.ChangePassword(f.ctx, &cip.ChangePasswordInput{AccessToken: res.AuthenticationResult.AccessToken,
			PreviousPassword: aws.String("Bob-Passw0rd1"), ProposedPassword: aws.String(pw)})
		wantCode(t, err, "InvalidParameterException")
		_, err = adm.AdminSetUserPassword(f.ctx, &cip.AdminSetUserPasswordInput{UserPoolId: pool, Username: aws.String("bob"),
			Password: aws.String(pw), Permanent: true})
		wantCode(t, err, "InvalidParameterException")
		_, err = adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("tmp"),
			TemporaryPassword: aws.String(pw), MessageAction: types.MessageActionTypeSuppress})
		wantCode(t, err, "InvalidParameterException")
	}
	if r, err := f.passwordAuth("bob", "Bob-Passw0rd1"); err != nil || r.AuthenticationResult == nil {
		t.Fatalf("bob's password changed: %v", err)
	}
	// A new password in a challenge response: the policy refuses it.
	f.createInvited("nina", "Temp-Passw0rd1")
	out, err := f.passwordAuth("nina", "Temp-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"Nina-Passw0rd1 ", long + "é"} {
		_, err = f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
			Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "nina", "NEW_PASSWORD": pw}})
		wantCode(t, err, "InvalidPasswordException")
	}
	r, err := f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
		Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "nina", "NEW_PASSWORD": long}})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("256-character new password: %v", err)
	}
	if r, err := f.passwordAuth("nina", long); err != nil || r.AuthenticationResult == nil {
		t.Fatalf("sign-in with a 256-character password: %v", err)
	}
}

// The email attribute is a bare, well-formed address of at most 256
// characters: SignUp, AdminCreateUser, UpdateUserAttributes,
// AdminUpdateUserAttributes and the NEW_PASSWORD_REQUIRED challenge refuse
// anything else with InvalidParameterException, changing and mailing
// nothing.
func TestEmailAddressFormat(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	at := res.AuthenticationResult.AccessToken
	f.createInvited("henry", "Temp-Passw0rd1", attr("email", "henry@example.com"))
	out, err := f.passwordAuth("henry", "Temp-Passw0rd1")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("want NEW_PASSWORD_REQUIRED: %v", err)
	}
	user := "dora" // of SignUp and AdminCreateUser
	ops := []struct {
		name string
		call func(email string) error
	}{
		{"SignUp", func(email string) error {
			_, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String(user),
				Password: aws.String("Dora-Passw0rd1"), UserAttributes: []types.AttributeType{attr("email", email)}})
			return err
		}},
		{"AdminCreateUser", func(email string) error {
			_, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String(user),
				UserAttributes: []types.AttributeType{attr("email", email)}})
			return err
		}},
		{"UpdateUserAttributes", func(email string) error {
			_, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: at,
				UserAttributes: []types.AttributeType{attr("email", email)}})
			return err
		}},
		{"AdminUpdateUserAttributes", func(email string) error {
			_, err := adm.AdminUpdateUserAttributes(f.ctx, &cip.AdminUpdateUserAttributesInput{UserPoolId: pool, Username: aws.String("bob"),
				UserAttributes: []types.AttributeType{attr("email", email)}})
			return err
		}},
		{"RespondToAuthChallenge", func(email string) error {
			_, err := f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
				ChallengeName: out.ChallengeName, Session: out.Session, ChallengeResponses: map[string]string{
					"USERNAME": "henry", "NEW_PASSWORD": "Henry-Passw0rd1", "userAttributes.email": email}})
			return err
		}},
	}
	sent, _ := f.App.Core.Store.ListMail(f.ctx, 0)
	for _, email := range []string{"dora@@example.com", "dora@example@example.com", "Dora <dora@example.com>", "<dora@example.com>",
		"dora@example.com (Dora)", " dora@example.com", "dora@example.com\n", "dora @example.com", `"dora x"@example.com`,
		"dora..x@example.com", ".dora@example.com", "dora@example..com", "dora@", "@example.com", "dora", "",
		"dora@example\u00a0.com", "dora@example.com\u200b", "do\u2028ra@example.com",
		strings.Repeat("d", 245) + "@example.com"} {
		for _, op := range ops {
			if e := wantCode(t, op.call(email), "InvalidParameterException"); e.Message != "Invalid email address format." {
				t.Errorf("%s %q: message %q", op.name, email, e.Message)
			}
		}
	}
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "dora"); err == nil {
		t.Error("a refused address created the user")
	}
	if a := f.userAttrs(at); a["email"] != "bob@example.com" {
		t.Errorf("a refused address changed bob's: %v", a)
	}
	if u, _ := f.App.Core.Store.GetUser(f.ctx, poolID, "henry"); u.Email != "henry@example.com" || u.Status != store.StatusForceChangePassword {
		t.Errorf("a refused challenge response changed the user: %s %s", u.Email, u.Status)
	}
	if ms, _ := f.App.Core.Store.ListMail(f.ctx, 0); len(ms) != len(sent) {
		t.Errorf("refused addresses mailed %d messages", len(ms)-len(sent))
	}

	// Unusual but well-formed addresses, up to 256 characters, pass.
	for i, email := range []string{"dora+tag@example.com", "o'neil/ops@example.com", "dörte@exämple.de", strings.Repeat("d", 244) + "@example.com"} {
		for j, op := range ops[:4] {
			user = fmt.Sprintf("dora%d%d", i, j)
			if err := op.call(email); err != nil {
				t.Errorf("%s %q: %v", op.name, email, err)
			}
		}
		if a := f.userAttrs(at); a["email"] != email {
			t.Errorf("bob's address: %q, want %q", a["email"], email)
		}
	}
	if err := ops[4].call("henry@example.org"); err != nil {
		t.Fatalf("challenge response with a good address: %v", err)
	}
}

// TestOversizedUsernameRefusedUnread: a username no user can have (over
// 128 characters) is refused with InvalidParameterException by every
// operation an unauthenticated caller can name one in, before anything is
// counted, stored or recorded: no audit event, no decoy code, no counter.
func TestOversizedUsernameRefusedUnread(t *testing.T) {
	f := start(t)
	long := strings.Repeat("x", 129) + "-unread"
	client := aws.String("demo-web")
	calls := map[string]func() error{
		"InitiateAuth": func() error {
			_, err := f.c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: client,
				AuthParameters: map[string]string{"USERNAME": long, "PASSWORD": "Whatever-Passw0rd"}})
			return err
		},
		"ForgotPassword": func() error {
			_, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: client, Username: aws.String(long)})
			return err
		},
		"ConfirmForgotPassword": func() error {
			_, err := f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: client, Username: aws.String(long),
				ConfirmationCode: aws.String("123456"), Password: aws.String("New-Passw0rd-1")})
			return err
		},
		"ResendConfirmationCode": func() error {
			_, err := f.c.ResendConfirmationCode(f.ctx, &cip.ResendConfirmationCodeInput{ClientId: client, Username: aws.String(long)})
			return err
		},
		"ConfirmSignUp": func() error {
			_, err := f.c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: client, Username: aws.String(long), ConfirmationCode: aws.String("123456")})
			return err
		},
		"SignUp": func() error {
			_, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: client, Username: aws.String(long), Password: aws.String("Whatever-Passw0rd")})
			return err
		},
	}
	for name, call := range calls {
		if ge := wantCode(t, call(), "InvalidParameterException"); !strings.Contains(ge.Message, "128") {
			t.Errorf("%s: %s", name, ge.Message)
		}
	}
	evs := f.AuditEvents(t, store.AuditFilter{})
	for _, e := range evs {
		if strings.Contains(e.Username, "-unread") || strings.Contains(e.Resource, "-unread") {
			t.Fatalf("recorded: %+v", e)
		}
	}
}

// TestMissingMembersNamed: a missing member is named in the error, and a
// sign-up without an address gets no CodeDeliveryDetails (no code went
// anywhere), as Cognito answers.
func TestMissingMembersNamed(t *testing.T) {
	f := start(t)
	client := aws.String("demo-web")
	_, err := f.c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: client, Username: aws.String(""), ConfirmationCode: aws.String("123456")})
	if ge := wantCode(t, err, "InvalidParameterException"); !strings.Contains(ge.Message, "'username'") {
		t.Errorf("ConfirmSignUp without Username: %s", ge.Message)
	}
	_, err = f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: client, Username: aws.String("alice"),
		ConfirmationCode: aws.String("123456"), Password: aws.String("")})
	if ge := wantCode(t, err, "InvalidParameterException"); !strings.Contains(ge.Message, "'password'") {
		t.Errorf("ConfirmForgotPassword without Password: %s", ge.Message)
	}
	out, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: client, Username: aws.String("no-mail"), Password: aws.String("No-Mail-Passw0rd")})
	if err != nil || out.CodeDeliveryDetails != nil {
		t.Fatalf("SignUp without an address: %+v %v", out, err)
	}
	re, err := f.c.ResendConfirmationCode(f.ctx, &cip.ResendConfirmationCodeInput{ClientId: client, Username: aws.String("no-mail")})
	if err != nil || re.CodeDeliveryDetails != nil {
		t.Fatalf("ResendConfirmationCode without an address: %+v %v", re, err)
	}
}

// TestForgotPasswordWaitsForTheFirstSignIn: a user still on its temporary
// password gets no reset code (its first sign-in sets a password; a reset
// would skip that step), answered as for any user who gets none.
func TestForgotPasswordWaitsForTheFirstSignIn(t *testing.T) {
	f := start(t)
	adm := f.admin()
	if _, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: aws.String(poolID), Username: aws.String("newbie"),
		TemporaryPassword: aws.String("Temp-Passw0rd1"), MessageAction: types.MessageActionTypeSuppress,
		UserAttributes: []types.AttributeType{{Name: aws.String("email"), Value: aws.String("newbie@example.com")},
			{Name: aws.String("email_verified"), Value: aws.String("true")}}}); err != nil {
		t.Fatal(err)
	}
	out, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("newbie")})
	if err != nil || out.CodeDeliveryDetails == nil {
		t.Fatalf("ForgotPassword: %+v %v", out, err)
	}
	if ms, _ := f.App.Core.Store.ListMail(f.ctx, 0); len(ms) != 0 {
		t.Fatalf("mailed: %+v", ms)
	}
	if g, _ := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: aws.String(poolID), Username: aws.String("newbie")}); g.UserStatus != types.UserStatusTypeForceChangePassword {
		t.Fatalf("status %s", g.UserStatus)
	}
}

// TestStandardAttributeFormats: phone_number (E.164), birthdate
// (YYYY-MM-DD) and updated_at (seconds) are checked as Cognito checks
// them, and a refused value changes nothing.
func TestStandardAttributeFormats(t *testing.T) {
	f := start(t)
	at := aws.ToString(f.signInAlice().AccessToken)
	update := func(name, value string) error {
		_, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: aws.String(at),
			UserAttributes: []types.AttributeType{{Name: aws.String(name), Value: aws.String(value)}}})
		return err
	}
	for _, bad := range []struct{ name, value string }{
		{"phone_number", "not a phone"}, {"phone_number", "+"}, {"phone_number", "+1234567890123456"}, {"phone_number", "0044 20 7946 0000"},
		{"birthdate", "the day after tomorrow"}, {"birthdate", "2001-02-29"}, {"birthdate", "1990-1-1"},
		{"updated_at", "yesterday"}, {"updated_at", "-5"},
	} {
		wantCode(t, update(bad.name, bad.value), "InvalidParameterException")
	}
	for _, good := range []struct{ name, value string }{
		{"phone_number", "+442079460000"}, {"birthdate", "1990-01-31"}, {"birthdate", "0000-02-29"}, {"updated_at", "1796000000"},
	} {
		if err := update(good.name, good.value); err != nil {
			t.Errorf("%s=%q: %v", good.name, good.value, err)
		}
	}
	u, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: aws.String(at)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range u.UserAttributes {
		got[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	if got["phone_number"] != "+442079460000" || got["birthdate"] != "0000-02-29" || got["updated_at"] != "1796000000" {
		t.Fatalf("attributes %v", got)
	}
	// The same user reads the same every time: sub, email, then by name.
	var names []string
	for _, a := range u.UserAttributes[3:] {
		names = append(names, aws.ToString(a.Name))
	}
	if !slices.IsSorted(names) || len(names) < 3 {
		t.Fatalf("attributes in the order %v", names)
	}
}

// TestResetRefusedOnceDisabled: a reset code sent before the user was
// disabled sets no password afterwards.
func TestResetRefusedOnceDisabled(t *testing.T) {
	f := start(t)
	if _, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	code := f.lastCode("bob@example.com")
	if _, err := f.admin().AdminDisableUser(f.ctx, &cip.AdminDisableUserInput{UserPoolId: aws.String(poolID), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	_, err := f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob"),
		ConfirmationCode: aws.String(code), Password: aws.String("Bob-N3w-Passw0rd")})
	if ge := wantCode(t, err, "NotAuthorizedException"); ge.Message != "User is disabled." {
		t.Errorf("message %q", ge.Message)
	}
	if _, err := f.admin().AdminEnableUser(f.ctx, &cip.AdminEnableUserInput{UserPoolId: aws.String(poolID), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.passwordAuth("bob", "Bob-N3w-Passw0rd"); err == nil {
		t.Fatal("the new password was set")
	}
}

// TestChallengeAnswerLeftOut: a challenge answered without its code is a
// malformed request: InvalidParameterException, the session still good
// for the right answer.
func TestChallengeAnswerLeftOut(t *testing.T) {
	f := start(t)
	out, err := f.passwordAuth("alice", "Alice-Passw0rd")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		t.Fatalf("%+v %v", out, err)
	}
	respond := func(code string) (*cip.RespondToAuthChallengeOutput, error) {
		return f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
			Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code}})
	}
	_, err = respond("")
	if ge := wantCode(t, err, "InvalidParameterException"); !strings.Contains(ge.Message, "SOFTWARE_TOKEN_MFA_CODE") {
		t.Errorf("message %q", ge.Message)
	}
	if r, err := respond(f.totp(aliceSecret)); err != nil || r.AuthenticationResult == nil {
		t.Fatalf("the right code after: %+v %v", r, err)
	}
}

// TestIDTokenIsNoAccessToken: an ID token given where the user API takes
// an access token is an invalid access token, as Cognito says.
func TestIDTokenIsNoAccessToken(t *testing.T) {
	f := start(t)
	_, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: f.signInAlice().IdToken})
	if ge := wantCode(t, err, "NotAuthorizedException"); ge.Message != "Invalid Access Token" {
		t.Errorf("message %q", ge.Message)
	}
}

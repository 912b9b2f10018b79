package cognito_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
)

func (f *fixture) adminClient(ak, secret, token string) *cip.Client {
	return cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.IDP)), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(ak, secret, token)})
}

func TestAdminAPI(t *testing.T) {
	f := start(t, func(c *config.Config) {
		c.UserPools[0].Clients[0].Flows = append(c.UserPools[0].Clients[0].Flows, "admin_user_password")
	})
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	cu, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("gina"),
		TemporaryPassword: aws.String("Temp-Passw0rd1"), MessageAction: types.MessageActionTypeSuppress,
		UserAttributes: []types.AttributeType{{Name: aws.String("email"), Value: aws.String("gina@example.com")}}})
	if err != nil {
		t.Fatal(err)
	}
	if cu.User.UserStatus != types.UserStatusTypeForceChangePassword || !cu.User.Enabled {
		t.Fatalf("created user: %+v", cu.User)
	}
	_, err = adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("gina"), TemporaryPassword: aws.String("Temp-Passw0rd1")})
	wantCode(t, err, "UsernameExistsException")
	out, err := f.passwordAuth("gina", "Temp-Passw0rd1")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("temporary password sign-in: %v %q", err, out.ChallengeName)
	}
	g, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("gina")})
	if err != nil || aws.ToString(g.Username) != "gina" {
		t.Fatalf("AdminGetUser: %v", err)
	}
	lu, err := adm.ListUsers(f.ctx, &cip.ListUsersInput{UserPoolId: pool, Filter: aws.String(`email = "gina@example.com"`)})
	if err != nil || len(lu.Users) != 1 || aws.ToString(lu.Users[0].Username) != "gina" {
		t.Fatalf("ListUsers filter: %v %+v", err, lu)
	}
	all, err := adm.ListUsers(f.ctx, &cip.ListUsersInput{UserPoolId: pool, Limit: aws.Int32(2)})
	if err != nil || len(all.Users) != 2 || all.PaginationToken == nil {
		t.Fatalf("ListUsers paging: %v %+v", err, all)
	}
	if _, err := adm.AdminSetUserPassword(f.ctx, &cip.AdminSetUserPasswordInput{UserPoolId: pool, Username: aws.String("gina"),
		Password: aws.String("Gina-Passw0rd1"), Permanent: true}); err != nil {
		t.Fatal(err)
	}
	if res, err := f.passwordAuth("gina", "Gina-Passw0rd1"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("sign-in with the set password: %v", err)
	}
	// Groups.
	if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("auditors"), Precedence: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	for _, grp := range []string{"auditors", "staff"} {
		if _, err := adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String("gina"), GroupName: aws.String(grp)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String("gina"), GroupName: aws.String("nope")})
	wantCode(t, err, "ResourceNotFoundException")
	if _, err := adm.AdminRemoveUserFromGroup(f.ctx, &cip.AdminRemoveUserFromGroupInput{UserPoolId: pool, Username: aws.String("gina"), GroupName: aws.String("auditors")}); err != nil {
		t.Fatal(err)
	}
	lg, err := adm.AdminListGroupsForUser(f.ctx, &cip.AdminListGroupsForUserInput{UserPoolId: pool, Username: aws.String("gina")})
	if err != nil || len(lg.Groups) != 1 || aws.ToString(lg.Groups[0].GroupName) != "staff" || aws.ToString(lg.Groups[0].RoleArn) == "" {
		t.Fatalf("groups for user: %v %+v", err, lg)
	}
	gs, err := adm.ListGroups(f.ctx, &cip.ListGroupsInput{UserPoolId: pool})
	if err != nil || len(gs.Groups) != 3 {
		t.Fatalf("ListGroups: %v %+v", err, gs)
	}
	// AdminInitiateAuth on a client allowed the admin flow; disable/enable.
	ai, err := adm.AdminInitiateAuth(f.ctx, &cip.AdminInitiateAuthInput{UserPoolId: pool, ClientId: aws.String("demo-web"),
		AuthFlow: types.AuthFlowTypeAdminUserPasswordAuth, AuthParameters: map[string]string{"USERNAME": "gina", "PASSWORD": "Gina-Passw0rd1"}})
	if err != nil || ai.AuthenticationResult == nil {
		t.Fatalf("AdminInitiateAuth: %v", err)
	}
	var id map[string]any
	decode(t, aws.ToString(ai.AuthenticationResult.IdToken), &id)
	if id["cognito:preferred_role"] != "arn:aws:iam::000000000000:role/demo-staff" {
		t.Errorf("group membership not in the token: %v", id["cognito:preferred_role"])
	}
	// A server refreshes through the admin API too.
	for _, flow := range []types.AuthFlowType{types.AuthFlowTypeRefreshTokenAuth, types.AuthFlowTypeRefreshToken} {
		ar, err := adm.AdminInitiateAuth(f.ctx, &cip.AdminInitiateAuthInput{UserPoolId: pool, ClientId: aws.String("demo-web"),
			AuthFlow: flow, AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(ai.AuthenticationResult.RefreshToken)}})
		if err != nil || ar.AuthenticationResult == nil || aws.ToString(ar.AuthenticationResult.AccessToken) == "" {
			t.Fatalf("AdminInitiateAuth %s: %v", flow, err)
		}
	}
	if _, err := adm.AdminDisableUser(f.ctx, &cip.AdminDisableUserInput{UserPoolId: pool, Username: aws.String("gina")}); err != nil {
		t.Fatal(err)
	}
	_, err = f.passwordAuth("gina", "Gina-Passw0rd1")
	wantCode(t, err, "NotAuthorizedException")
	adm.AdminEnableUser(f.ctx, &cip.AdminEnableUserInput{UserPoolId: pool, Username: aws.String("gina")})
	if _, err := adm.AdminUserGlobalSignOut(f.ctx, &cip.AdminUserGlobalSignOutInput{UserPoolId: pool, Username: aws.String("gina")}); err != nil {
		t.Fatal(err)
	}
	_, err = f.refresh(ai.AuthenticationResult.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")
	// A reset code goes to a verified address only: gina's is not yet.
	_, err = adm.AdminResetUserPassword(f.ctx, &cip.AdminResetUserPasswordInput{UserPoolId: pool, Username: aws.String("gina")})
	wantCode(t, err, "InvalidParameterException")
	if g, _ := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("gina")}); g.UserStatus != types.UserStatusTypeConfirmed {
		t.Errorf("status after a refused reset: %s", g.UserStatus)
	}
	if _, err := adm.AdminUpdateUserAttributes(f.ctx, &cip.AdminUpdateUserAttributesInput{UserPoolId: pool, Username: aws.String("gina"),
		UserAttributes: []types.AttributeType{{Name: aws.String("email_verified"), Value: aws.String("true")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AdminResetUserPassword(f.ctx, &cip.AdminResetUserPasswordInput{UserPoolId: pool, Username: aws.String("gina")}); err != nil {
		t.Fatal(err)
	}
	if g, _ := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("gina")}); g.UserStatus != types.UserStatusTypeResetRequired {
		t.Errorf("status after reset: %s", g.UserStatus)
	}
	if _, err := adm.AdminDeleteUser(f.ctx, &cip.AdminDeleteUserInput{UserPoolId: pool, Username: aws.String("gina")}); err != nil {
		t.Fatal(err)
	}
	_, err = adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("gina")})
	wantCode(t, err, "UserNotFoundException")

	// Refusals: unsigned (the SDK sends admin calls unsigned without
	// credentials), wrong secret, unknown key, and a caller whose policy
	// lacks the action.
	_, err = f.c.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("alice")})
	wantCode(t, err, "MissingAuthenticationTokenException")
	_, err = f.adminClient("AKIAWRITDEMOADMIN001", "wrong", "").AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("alice")})
	wantCode(t, err, "InvalidSignatureException")
	_, err = f.adminClient("AKIAUNKNOWNKEY000000", "x", "").AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("alice")})
	wantCode(t, err, "UnrecognizedClientException")
	creds, err := f.App.STS.Issue(stsSession("demo-user"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.adminClient(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken).AdminCreateUser(f.ctx,
		&cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("mallory")})
	wantCode(t, err, "AccessDeniedException")
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "mallory"); err == nil {
		t.Error("a refused AdminCreateUser created the user")
	}
}

// AdminDisableUser revokes the user's tokens: AdminEnableUser does not
// bring them back.
func TestAdminDisableUserRevokesTokens(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil || res.AuthenticationResult == nil {
		t.Fatalf("bob sign-in: %v", err)
	}
	old := res.AuthenticationResult
	if _, err := adm.AdminDisableUser(f.ctx, &cip.AdminDisableUserInput{UserPoolId: pool, Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: old.AccessToken})
	wantCode(t, err, "NotAuthorizedException")
	if _, err := adm.AdminEnableUser(f.ctx, &cip.AdminEnableUserInput{UserPoolId: pool, Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: old.AccessToken})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.refresh(old.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")
	// A new sign-in after enabling works, even within the same second.
	res, err = f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil || res.AuthenticationResult == nil {
		t.Fatalf("bob sign-in after enabling: %v", err)
	}
	if _, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: res.AuthenticationResult.AccessToken}); err != nil {
		t.Fatalf("GetUser with a new token: %v", err)
	}
	if _, err := f.refresh(res.AuthenticationResult.RefreshToken); err != nil {
		t.Fatalf("refresh with a new token: %v", err)
	}
	_, err = adm.AdminDisableUser(f.ctx, &cip.AdminDisableUserInput{UserPoolId: pool, Username: aws.String("nobody")})
	wantCode(t, err, "UserNotFoundException")
}

// Administrators may set email_verified and phone_number_verified (true
// or false) when creating a user; users may not set them.
func TestAdminCreateUserVerificationFlags(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	// The flag first, the address after: the flag holds for the address.
	f.createInvited("ivy", "Temp-Passw0rd1", attr("email_verified", "true"), attr("email", "ivy@example.com"),
		attr("phone_number_verified", "true"), attr("phone_number", "+15555550100"))
	g, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("ivy")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range g.UserAttributes {
		got[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	if got["email_verified"] != "true" || got["phone_number_verified"] != "true" || got["phone_number"] != "+15555550100" {
		t.Fatalf("attributes: %v", got)
	}
	out, err := f.passwordAuth("ivy", "Temp-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: out.ChallengeName, Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "ivy", "NEW_PASSWORD": "Ivy-Passw0rd12"}})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("new password: %v", err)
	}
	var id map[string]any
	decode(t, aws.ToString(r.AuthenticationResult.IdToken), &id)
	if id["email_verified"] != true || id["phone_number_verified"] != true {
		t.Errorf("ID token: email_verified %v phone_number_verified %v", id["email_verified"], id["phone_number_verified"])
	}

	for _, c := range []struct {
		attrs []types.AttributeType
		code  string
	}{
		{[]types.AttributeType{attr("email", "jack@example.com"), attr("email_verified", "maybe")}, "InvalidParameterException"},
		{[]types.AttributeType{attr("email", "jack@example.com"), attr("email_verified", "false"), attr("custom:x", strings.Repeat("x", 4096))}, "InvalidParameterException"},
		{[]types.AttributeType{attr("sub", "forged")}, "NotAuthorizedException"},
		{[]types.AttributeType{attr("cognito:preferred_role", "arn:aws:iam::000000000000:role/demo-staff")}, "InvalidParameterException"},
	} {
		_, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("jack"),
			MessageAction: types.MessageActionTypeSuppress, UserAttributes: c.attrs})
		wantCode(t, err, c.code)
	}
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "jack"); err == nil {
		t.Error("a refused AdminCreateUser created the user")
	}

	// Users may not.
	bob, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []types.AttributeType{attr("email_verified", "true"), attr("phone_number_verified", "true")} {
		_, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: bob.AuthenticationResult.AccessToken,
			UserAttributes: []types.AttributeType{a}})
		wantCode(t, err, "NotAuthorizedException")
	}
	_, err = f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("kate"), Password: aws.String("Kate-Passw0rd1"),
		UserAttributes: []types.AttributeType{attr("email", "kate@example.com"), attr("email_verified", "true")}})
	wantCode(t, err, "NotAuthorizedException")
}

// Reads do not write: AdminGetUser and AdminListGroupsForUser leave
// UserLastModifiedDate alone.
func TestAdminReadsDoNotModifyUser(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	get := func() time.Time {
		t.Helper()
		g, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("bob")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToTime(g.UserLastModifiedDate)
	}
	first := get()
	f.Clock.Advance(2 * time.Second)
	if _, err := adm.AdminListGroupsForUser(f.ctx, &cip.AdminListGroupsForUserInput{UserPoolId: pool, Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(2 * time.Second)
	if second := get(); !second.Equal(first) {
		t.Errorf("UserLastModifiedDate moved on reads: %v, then %v", first, second)
	}
	// A write does move it.
	if _, err := adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String("bob"),
		GroupName: aws.String("staff")}); err != nil {
		t.Fatal(err)
	}
	if third := get(); !third.After(first) {
		t.Errorf("UserLastModifiedDate did not move on a write: %v, then %v", first, third)
	}
	_, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("nobody")})
	wantCode(t, err, "UserNotFoundException")
}

var tempPasswordRE = regexp.MustCompile(`temporary password is (\S+)`)

// mails returns the bodies of the outbox messages to addr.
func (f *fixture) mails(addr string) []string {
	f.t.Helper()
	ms, err := f.App.Core.Store.ListMail(f.ctx, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if m.To == addr {
			out = append(out, m.Body)
		}
	}
	return out
}

// AdminCreateUser with MessageAction RESEND resends the invitation of an
// existing user with a new temporary password; an unknown MessageAction
// is refused.
func TestAdminCreateUserResend(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	f.createInvited("kim", "Temp-Passw0rd1", attr("email", "kim@example.com"))
	if n := len(f.mails("kim@example.com")); n != 0 {
		t.Fatalf("SUPPRESS mailed %d messages", n)
	}
	out, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("kim"),
		MessageAction: types.MessageActionTypeResend})
	if err != nil {
		t.Fatalf("RESEND: %v", err)
	}
	if aws.ToString(out.User.Username) != "kim" || out.User.UserStatus != types.UserStatusTypeForceChangePassword {
		t.Errorf("RESEND user: %+v", out.User)
	}
	ms := f.mails("kim@example.com")
	if len(ms) != 1 || tempPasswordRE.FindStringSubmatch(ms[0]) == nil {
		t.Fatalf("RESEND mail: %q", ms)
	}
	temp := tempPasswordRE.FindStringSubmatch(ms[0])[1]
	_, err = f.passwordAuth("kim", "Temp-Passw0rd1")
	wantCode(t, err, "NotAuthorizedException")
	if a, err := f.passwordAuth("kim", temp); err != nil || a.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("sign-in with the resent password: %v", err)
	}
	// With a given temporary password.
	if _, err := adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("kim"),
		MessageAction: types.MessageActionTypeResend, TemporaryPassword: aws.String("Temp-Passw0rd2")}); err != nil {
		t.Fatal(err)
	}
	if ms := f.mails("kim@example.com"); len(ms) != 2 || !strings.Contains(ms[1], "Temp-Passw0rd2") {
		t.Errorf("second RESEND mail: %q", ms)
	}
	if a, err := f.passwordAuth("kim", "Temp-Passw0rd2"); err != nil || a.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("sign-in with the given temporary password: %v", err)
	}
	// Without RESEND, an existing user is still an error.
	_, err = adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("kim")})
	wantCode(t, err, "UsernameExistsException")
	// A user who has set a password gets no new temporary one.
	_, err = adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("bob"),
		MessageAction: types.MessageActionTypeResend})
	wantCode(t, err, "UnsupportedUserStateException")
	if len(f.mails("bob@example.com")) != 0 {
		t.Error("RESEND to a confirmed user sent mail")
	}
	if res, err := f.passwordAuth("bob", "Bob-Passw0rd1"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("bob after a refused RESEND: %v", err)
	}
	_, err = adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("nobody"),
		MessageAction: types.MessageActionTypeResend})
	wantCode(t, err, "UserNotFoundException")
	_, err = adm.AdminCreateUser(f.ctx, &cip.AdminCreateUserInput{UserPoolId: pool, Username: aws.String("lee"),
		MessageAction: types.MessageActionType("SHOUT")})
	wantCode(t, err, "InvalidParameterException")
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "lee"); err == nil {
		t.Error("an unknown MessageAction created the user")
	}
}

package cognito_test

import (
	"testing"

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

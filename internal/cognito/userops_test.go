package cognito_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// ListUsersInGroup lists a group's members, a page at a time.
func TestListUsersInGroup(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	for _, u := range []string{"gus", "hal"} {
		f.createInvited(u, "Temp-Passw0rd1")
		if _, err := adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String(u), GroupName: aws.String("staff")}); err != nil {
			t.Fatal(err)
		}
	}
	in := func(limit int32, next *string) (*cip.ListUsersInGroupOutput, error) {
		return adm.ListUsersInGroup(f.ctx, &cip.ListUsersInGroupInput{UserPoolId: pool, GroupName: aws.String("staff"), Limit: aws.Int32(limit), NextToken: next})
	}
	p1, err := in(2, nil)
	if err != nil || usernames(p1.Users) != "alice,gus" || p1.NextToken == nil {
		t.Fatalf("first page: %v %+v", err, p1)
	}
	if len(p1.Users[0].Attributes) == 0 || !p1.Users[0].Enabled {
		t.Errorf("user: %+v", p1.Users[0])
	}
	p2, err := in(2, p1.NextToken)
	if err != nil || usernames(p2.Users) != "hal" || p2.NextToken != nil {
		t.Fatalf("second page: %v %+v", err, p2)
	}
	all, err := adm.ListUsersInGroup(f.ctx, &cip.ListUsersInGroupInput{UserPoolId: pool, GroupName: aws.String("customers")})
	if err != nil || usernames(all.Users) != "bob" {
		t.Fatalf("customers: %v %+v", err, all)
	}
	_, err = in(61, nil)
	wantCode(t, err, "InvalidParameterException")
	_, err = in(2, aws.String("bob"))
	wantCode(t, err, "InvalidParameterException")
	// A token of another group's listing is not this one's.
	_, err = adm.ListUsersInGroup(f.ctx, &cip.ListUsersInGroupInput{UserPoolId: pool, GroupName: aws.String("customers"), NextToken: p1.NextToken})
	wantCode(t, err, "InvalidParameterException")
	_, err = adm.ListUsersInGroup(f.ctx, &cip.ListUsersInGroupInput{UserPoolId: pool, GroupName: aws.String("nope")})
	wantCode(t, err, "ResourceNotFoundException")
	creds, err := f.App.STS.Issue(stsSession("demo-user"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.adminClient(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken).ListUsersInGroup(f.ctx,
		&cip.ListUsersInGroupInput{UserPoolId: pool, GroupName: aws.String("staff")})
	wantCode(t, err, "AccessDeniedException")
}

// DeleteUser deletes the caller's own account: its tokens stop working,
// and its pending codes do not serve a later user of the same name.
func TestDeleteUser(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	ar := res.AuthenticationResult
	if _, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	reset := f.lastCode("bob@example.com")
	if _, err := f.c.DeleteUser(f.ctx, &cip.DeleteUserInput{AccessToken: ar.AccessToken}); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("bob")})
	wantCode(t, err, "UserNotFoundException")
	_, err = f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: ar.AccessToken})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.c.DeleteUser(f.ctx, &cip.DeleteUserInput{AccessToken: ar.AccessToken})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.refresh(ar.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.passwordAuth("bob", "Bob-Passw0rd1")
	wantCode(t, err, "NotAuthorizedException")
	// A new bob cannot be taken over with the old bob's reset code.
	f.createInvited("bob", "Temp-Passw0rd1", attr("email", "bob@example.com"), attr("email_verified", "true"))
	_, err = f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob"),
		ConfirmationCode: aws.String(reset), Password: aws.String("Mallory-Passw0rd1")})
	wantCode(t, err, "CodeMismatchException")
	// Without a token.
	_, err = f.c.DeleteUser(f.ctx, &cip.DeleteUserInput{AccessToken: aws.String("")})
	wantCode(t, err, "InvalidParameterException")
}

// DeleteUserAttributes deletes the caller's writable attributes only.
func TestDeleteUserAttributes(t *testing.T) {
	f := start(t, userWritable("custom:team"))
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	at := res.AuthenticationResult.AccessToken
	if _, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: at, UserAttributes: []types.AttributeType{
		attr("name", "Bob"), attr("custom:team", "blue"), attr("phone_number", "+15555550100")}}); err != nil {
		t.Fatal(err)
	}
	del := func(names ...string) error {
		_, err := f.c.DeleteUserAttributes(f.ctx, &cip.DeleteUserAttributesInput{AccessToken: at, UserAttributeNames: names})
		return err
	}
	for _, c := range []struct {
		names []string
		code  string
	}{
		{[]string{"name", "email_verified"}, "NotAuthorizedException"},
		{[]string{"phone_number_verified"}, "NotAuthorizedException"},
		{[]string{"sub"}, "NotAuthorizedException"},
		{[]string{"name", "nosuch"}, "InvalidParameterException"},
		{[]string{"cognito:groups"}, "InvalidParameterException"},
		{[]string{}, "InvalidParameterException"},
	} {
		wantCode(t, del(c.names...), c.code)
	}
	if a := f.userAttrs(at); a["name"] != "Bob" || a["custom:team"] != "blue" || a["email_verified"] != "true" {
		t.Fatalf("refused deletions changed attributes: %v", a)
	}
	if err := del("name", "custom:team", "phone_number"); err != nil {
		t.Fatalf("DeleteUserAttributes: %v", err)
	}
	a := f.userAttrs(at)
	for _, n := range []string{"name", "custom:team", "phone_number", "phone_number_verified"} {
		if v, ok := a[n]; ok {
			t.Errorf("%s still set: %q", n, v)
		}
	}
	if a["email"] != "bob@example.com" || a["email_verified"] != "true" {
		t.Errorf("email touched: %v", a)
	}
	if err := del("email"); err != nil {
		t.Fatal(err)
	}
	if a := f.userAttrs(at); a["email"] != "" || a["email_verified"] != "" {
		t.Errorf("email after deletion: %v", a)
	}
}

// Administrators update and delete attributes, verification flags
// included; a changed email is unverified (and gets a code) unless
// email_verified is set in the same call.
func TestAdminUpdateAndDeleteUserAttributes(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	update := func(user string, attrs ...types.AttributeType) error {
		_, err := adm.AdminUpdateUserAttributes(f.ctx, &cip.AdminUpdateUserAttributesInput{UserPoolId: pool, Username: aws.String(user), UserAttributes: attrs})
		return err
	}
	get := func() map[string]string {
		t.Helper()
		g, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("bob")})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, a := range g.UserAttributes {
			m[aws.ToString(a.Name)] = aws.ToString(a.Value)
		}
		return m
	}
	if err := update("bob", attr("email", "bob@example.org"), attr("custom:team", "red")); err != nil {
		t.Fatalf("AdminUpdateUserAttributes: %v", err)
	}
	if a := get(); a["email"] != "bob@example.org" || a["email_verified"] != "false" || a["custom:team"] != "red" {
		t.Fatalf("after changing email: %v", a)
	}
	// The new address can be verified with the code it was sent.
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.VerifyUserAttribute(f.ctx, &cip.VerifyUserAttributeInput{AccessToken: res.AuthenticationResult.AccessToken,
		AttributeName: aws.String("email"), Code: aws.String(f.lastCode("bob@example.org"))}); err != nil {
		t.Fatalf("VerifyUserAttribute: %v", err)
	}
	if a := get(); a["email_verified"] != "true" {
		t.Fatalf("after verifying: %v", a)
	}
	// Marked verified in the same call, whatever the order: no code sent.
	if err := update("bob", attr("email_verified", "true"), attr("email", "bob@example.net"),
		attr("phone_number", "+15555550100"), attr("phone_number_verified", "true")); err != nil {
		t.Fatal(err)
	}
	if a := get(); a["email"] != "bob@example.net" || a["email_verified"] != "true" || a["phone_number_verified"] != "true" {
		t.Fatalf("verified in the same call: %v", a)
	}
	if n := len(f.mails("bob@example.net")); n != 0 {
		t.Errorf("%d mails to an address marked verified", n)
	}
	for _, c := range []struct {
		attrs []types.AttributeType
		code  string
	}{
		{[]types.AttributeType{attr("nosuch", "x")}, "InvalidParameterException"},
		{[]types.AttributeType{attr("email_verified", "maybe")}, "InvalidParameterException"},
		{[]types.AttributeType{attr("sub", "forged")}, "NotAuthorizedException"},
		{[]types.AttributeType{attr("cognito:user_status", "CONFIRMED")}, "InvalidParameterException"},
	} {
		wantCode(t, update("bob", c.attrs...), c.code)
	}
	wantCode(t, update("nobody", attr("name", "x")), "UserNotFoundException")

	del := func(user string, names ...string) error {
		_, err := adm.AdminDeleteUserAttributes(f.ctx, &cip.AdminDeleteUserAttributesInput{UserPoolId: pool, Username: aws.String(user), UserAttributeNames: names})
		return err
	}
	if err := del("bob", "phone_number_verified", "email_verified", "custom:team"); err != nil {
		t.Fatalf("AdminDeleteUserAttributes: %v", err)
	}
	a := get()
	if a["email_verified"] != "false" || a["phone_number"] != "+15555550100" || a["custom:team"] != "" {
		t.Errorf("after deleting: %v", a)
	}
	if v, ok := a["phone_number_verified"]; ok {
		t.Errorf("phone_number_verified still set: %q", v)
	}
	wantCode(t, del("bob", "sub"), "NotAuthorizedException")
	wantCode(t, del("bob", "nosuch"), "InvalidParameterException")
	wantCode(t, del("nobody", "name"), "UserNotFoundException")
	// Unsigned calls are refused.
	_, err = f.c.AdminUpdateUserAttributes(f.ctx, &cip.AdminUpdateUserAttributesInput{UserPoolId: pool, Username: aws.String("bob"),
		UserAttributes: []types.AttributeType{attr("email_verified", "true")}})
	wantCode(t, err, "MissingAuthenticationTokenException")
}

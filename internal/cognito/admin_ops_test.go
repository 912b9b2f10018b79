package cognito_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
)

// admin returns a client signed with the reference configuration's
// administrator key (policy: Allow *).
func (f *fixture) admin() *cip.Client {
	return f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
}

// signUp registers an UNCONFIRMED user through SignUp (a confirmation
// code is mailed to email).
func (f *fixture) signUp(username, password, email string) {
	f.t.Helper()
	if _, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String(username),
		Password: aws.String(password), UserAttributes: []types.AttributeType{attr("email", email)}}); err != nil {
		f.t.Fatalf("SignUp %s: %v", username, err)
	}
}

// audited reports whether the audit trail holds an allowed idp event
// action about username (or, with username empty, about resource).
func (f *fixture) audited(action, username, resource string) bool {
	f.t.Helper()
	evs := f.AuditEvents(f.t, store.AuditFilter{Component: "idp"})
	for _, e := range evs {
		if e.Action == action && e.Outcome == "allow" && e.Username == username && (resource == "" || e.Resource == resource) {
			return true
		}
	}
	return false
}

// wantMessage asserts err is the API error code with message msg.
func wantMessage(t *testing.T, err error, code, msg string) {
	t.Helper()
	if e := wantCode(t, err, code); e.Message != msg {
		t.Errorf("%s message %q, want %q", code, e.Message, msg)
	}
}

// AdminConfirmSignUp confirms an UNCONFIRMED user without a code: the
// user signs in with USER_PASSWORD_AUTH at once, its mailed code is gone,
// and its email address stays unverified (no code reached it). Any other
// status is refused, as Cognito refuses it.
func TestAdminConfirmSignUp(t *testing.T) {
	f := start(t)
	adm := f.admin()
	pool := aws.String(poolID)
	f.signUp("dana", "Dana-Passw0rd1", "dana@example.com")
	code := f.lastCode("dana@example.com")
	_, err := f.passwordAuth("dana", "Dana-Passw0rd1")
	wantCode(t, err, "UserNotConfirmedException")

	if _, err := adm.AdminConfirmSignUp(f.ctx, &cip.AdminConfirmSignUpInput{UserPoolId: pool, Username: aws.String("dana")}); err != nil {
		t.Fatalf("AdminConfirmSignUp: %v", err)
	}
	g, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("dana")})
	if err != nil || g.UserStatus != types.UserStatusTypeConfirmed {
		t.Fatalf("after AdminConfirmSignUp: %v %+v", err, g)
	}
	for _, a := range g.UserAttributes {
		if aws.ToString(a.Name) == "email_verified" && aws.ToString(a.Value) == "true" {
			t.Error("AdminConfirmSignUp verified the email address")
		}
	}
	res, err := f.passwordAuth("dana", "Dana-Passw0rd1")
	if err != nil || res.AuthenticationResult == nil {
		t.Fatalf("USER_PASSWORD_AUTH after AdminConfirmSignUp: %v", err)
	}
	if _, err := f.App.Core.Store.GetCode(f.ctx, "confirm/"+poolID+"/dana"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the confirmation code outlived AdminConfirmSignUp: %v", err)
	}
	_, err = f.c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("dana"), ConfirmationCode: aws.String(code)})
	wantCode(t, err, "NotAuthorizedException")
	if !f.audited("AdminConfirmSignUp", "dana", "") {
		t.Error("no AdminConfirmSignUp audit event")
	}

	// Confirmed once: a second confirmation is refused, as is one of a
	// user who never signed up (FORCE_CHANGE_PASSWORD) or does not exist.
	_, err = adm.AdminConfirmSignUp(f.ctx, &cip.AdminConfirmSignUpInput{UserPoolId: pool, Username: aws.String("dana")})
	wantMessage(t, err, "NotAuthorizedException", "User cannot be confirmed. Current status is CONFIRMED")
	f.createInvited("evan", "Temp-Passw0rd1")
	_, err = adm.AdminConfirmSignUp(f.ctx, &cip.AdminConfirmSignUpInput{UserPoolId: pool, Username: aws.String("evan")})
	wantMessage(t, err, "NotAuthorizedException", "User cannot be confirmed. Current status is FORCE_CHANGE_PASSWORD")
	if g, _ := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("evan")}); g.UserStatus != types.UserStatusTypeForceChangePassword {
		t.Errorf("a refused AdminConfirmSignUp changed the status to %s", g.UserStatus)
	}
	_, err = adm.AdminConfirmSignUp(f.ctx, &cip.AdminConfirmSignUpInput{UserPoolId: pool, Username: aws.String("nobody")})
	wantMessage(t, err, "UserNotFoundException", "User does not exist.")
}

// AdminSetUserMFAPreference turns a user's TOTP MFA on and off as the
// user's own SetUserMFAPreference does; TOTP needs a verified software
// token, and no other factor can be turned on.
func TestAdminSetUserMFAPreference(t *testing.T) {
	f := start(t)
	adm := f.admin()
	pool := aws.String(poolID)
	set := func(user string, s *types.SoftwareTokenMfaSettingsType, sms *types.SMSMfaSettingsType) error {
		_, err := adm.AdminSetUserMFAPreference(f.ctx, &cip.AdminSetUserMFAPreferenceInput{UserPoolId: pool, Username: aws.String(user),
			SoftwareTokenMfaSettings: s, SMSMfaSettings: sms})
		return err
	}
	on := &types.SoftwareTokenMfaSettingsType{Enabled: true, PreferredMfa: true}
	mfaOf := func(user string) ([]string, string) {
		t.Helper()
		g, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String(user)})
		if err != nil {
			t.Fatal(err)
		}
		return g.UserMFASettingList, aws.ToString(g.PreferredMfaSetting)
	}

	// bob has no software token, then one associated but not verified.
	wantMessage(t, set("bob", on, nil), "InvalidParameterException", "User has not set up software token mfa")
	bob, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil || bob.AuthenticationResult == nil {
		t.Fatalf("bob sign-in: %v", err)
	}
	at := bob.AuthenticationResult.AccessToken
	assoc, err := f.c.AssociateSoftwareToken(f.ctx, &cip.AssociateSoftwareTokenInput{AccessToken: at})
	if err != nil {
		t.Fatal(err)
	}
	wantMessage(t, set("bob", on, nil), "InvalidParameterException", "User has not verified software token mfa")
	if list, _ := mfaOf("bob"); len(list) != 0 {
		t.Fatalf("a refused preference turned MFA on: %v", list)
	}
	if _, err := f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{AccessToken: at,
		UserCode: aws.String(f.totp(aws.ToString(assoc.SecretCode)))}); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(30 * time.Second)

	// Verified: on, and bob's sign-in asks for the code.
	if err := set("bob", on, &types.SMSMfaSettingsType{Enabled: false}); err != nil {
		t.Fatalf("TOTP on: %v", err)
	}
	if list, pref := mfaOf("bob"); !slices.Equal(list, []string{"SOFTWARE_TOKEN_MFA"}) || pref != "SOFTWARE_TOKEN_MFA" {
		t.Errorf("after TOTP on: %v %q", list, pref)
	}
	if out, err := f.passwordAuth("bob", "Bob-Passw0rd1"); err != nil || out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		t.Fatalf("bob sign-in with TOTP on: %v %q", err, out.ChallengeName)
	}
	if !f.audited("AdminSetUserMFAPreference", "bob", "") {
		t.Error("no AdminSetUserMFAPreference audit event")
	}

	// Off again (alice too, enrolled from the start): no challenge.
	for _, user := range []string{"bob", "alice"} {
		if err := set(user, &types.SoftwareTokenMfaSettingsType{Enabled: false}, nil); err != nil {
			t.Fatalf("TOTP off for %s: %v", user, err)
		}
		if list, pref := mfaOf(user); len(list) != 0 || pref != "" {
			t.Errorf("%s after TOTP off: %v %q", user, list, pref)
		}
	}
	if out, err := f.passwordAuth("alice", "Alice-Passw0rd"); err != nil || out.AuthenticationResult == nil {
		t.Fatalf("alice sign-in with TOTP off: %v %q", err, out.ChallengeName)
	}

	// Another factor, or an unknown user, is refused and changes nothing.
	wantCode(t, set("alice", on, &types.SMSMfaSettingsType{Enabled: true}), "InvalidParameterException")
	_, err = adm.AdminSetUserMFAPreference(f.ctx, &cip.AdminSetUserMFAPreferenceInput{UserPoolId: pool, Username: aws.String("alice"),
		SoftwareTokenMfaSettings: on, EmailMfaSettings: &types.EmailMfaSettingsType{PreferredMfa: true}})
	wantCode(t, err, "InvalidParameterException")
	if list, _ := mfaOf("alice"); len(list) != 0 {
		t.Errorf("a refused preference changed alice's MFA: %v", list)
	}
	wantMessage(t, set("nobody", on, nil), "UserNotFoundException", "User does not exist.")
	wantMessage(t, set("nobody", nil, nil), "UserNotFoundException", "User does not exist.")
}

// The SDK leaves out a false Enabled ({Enabled: false} goes as {}): a
// settings object given turns TOTP off when it does not say on, for the
// user as for the administrator; a pool requiring MFA refuses that.
func TestMFAPreferenceOmittedMembersAreFalse(t *testing.T) {
	f := start(t)
	at := f.signInAlice().AccessToken
	if _, err := f.c.SetUserMFAPreference(f.ctx, &cip.SetUserMFAPreferenceInput{AccessToken: at,
		SoftwareTokenMfaSettings: &types.SoftwareTokenMfaSettingsType{Enabled: false}}); err != nil {
		t.Fatal(err)
	}
	if out, err := f.passwordAuth("alice", "Alice-Passw0rd"); err != nil || out.AuthenticationResult == nil {
		t.Fatalf("alice after SetUserMFAPreference Enabled false: %v %q", err, out.ChallengeName)
	}

	req := start(t, func(c *config.Config) { c.UserPools[0].MFA = "required" })
	_, err := req.admin().AdminSetUserMFAPreference(req.ctx, &cip.AdminSetUserMFAPreferenceInput{UserPoolId: aws.String(poolID),
		Username: aws.String("alice"), SoftwareTokenMfaSettings: &types.SoftwareTokenMfaSettingsType{}})
	wantMessage(t, err, "InvalidParameterException", "MFA is required by the user pool and cannot be disabled")
	if out, err := req.passwordAuth("alice", "Alice-Passw0rd"); err != nil || out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		t.Fatalf("alice after a refused preference: %v %q", err, out.ChallengeName)
	}
}

// GetGroup, UpdateGroup and DeleteGroup: UpdateGroup changes only the
// members it is given; an unknown group is ResourceNotFoundException.
func TestGetUpdateDeleteGroup(t *testing.T) {
	f := start(t)
	adm := f.admin()
	pool := aws.String(poolID)
	if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("editors"),
		Description: aws.String("Edit things"), Precedence: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	get := func(name string) (*types.GroupType, error) {
		out, err := adm.GetGroup(f.ctx, &cip.GetGroupInput{UserPoolId: pool, GroupName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		return out.Group, nil
	}
	g, err := get("editors")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(g.GroupName) != "editors" || aws.ToString(g.UserPoolId) != poolID || aws.ToString(g.Description) != "Edit things" ||
		aws.ToInt32(g.Precedence) != 3 || g.RoleArn != nil || g.CreationDate == nil || g.LastModifiedDate == nil {
		t.Fatalf("GetGroup: %+v", g)
	}
	// GetGroup of a configured group carries its role.
	if s, err := get("staff"); err != nil || aws.ToString(s.RoleArn) != "arn:aws:iam::000000000000:role/demo-staff" || aws.ToInt32(s.Precedence) != 1 {
		t.Fatalf("GetGroup staff: %v %+v", err, s)
	}

	up, err := adm.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("editors"), Description: aws.String("Edits")})
	if err != nil || aws.ToString(up.Group.Description) != "Edits" || aws.ToInt32(up.Group.Precedence) != 3 {
		t.Fatalf("UpdateGroup description: %v %+v", err, up)
	}
	const role = "arn:aws:iam::000000000000:role/editors"
	up, err = adm.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("editors"),
		Precedence: aws.Int32(7), RoleArn: aws.String(role)})
	if err != nil || aws.ToString(up.Group.Description) != "Edits" || aws.ToInt32(up.Group.Precedence) != 7 || aws.ToString(up.Group.RoleArn) != role {
		t.Fatalf("UpdateGroup precedence and role: %v %+v", err, up)
	}
	if g, err := get("editors"); err != nil || aws.ToInt32(g.Precedence) != 7 || aws.ToString(g.RoleArn) != role || aws.ToString(g.Description) != "Edits" {
		t.Fatalf("GetGroup after UpdateGroup: %v %+v", err, g)
	}
	_, err = adm.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("editors"), Precedence: aws.Int32(-1)})
	wantCode(t, err, "InvalidParameterException")
	if g, _ := get("editors"); aws.ToInt32(g.Precedence) != 7 {
		t.Errorf("a refused UpdateGroup changed the precedence to %d", aws.ToInt32(g.Precedence))
	}
	if !f.audited("UpdateGroup", "", "editors") {
		t.Error("no UpdateGroup audit event")
	}

	// Unknown groups; an UpdateGroup of one does not create it.
	_, err = get("ghosts")
	wantMessage(t, err, "ResourceNotFoundException", "Group not found.")
	_, err = adm.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("ghosts"), Description: aws.String("boo")})
	wantMessage(t, err, "ResourceNotFoundException", "Group not found.")
	_, err = adm.DeleteGroup(f.ctx, &cip.DeleteGroupInput{UserPoolId: pool, GroupName: aws.String("ghosts")})
	wantMessage(t, err, "ResourceNotFoundException", "Group not found.")
	_, err = get("ghosts")
	wantCode(t, err, "ResourceNotFoundException")

	if _, err := adm.DeleteGroup(f.ctx, &cip.DeleteGroupInput{UserPoolId: pool, GroupName: aws.String("editors")}); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	_, err = get("editors")
	wantMessage(t, err, "ResourceNotFoundException", "Group not found.")
	_, err = adm.DeleteGroup(f.ctx, &cip.DeleteGroupInput{UserPoolId: pool, GroupName: aws.String("editors")})
	wantCode(t, err, "ResourceNotFoundException")
	if gs, err := adm.ListGroups(f.ctx, &cip.ListGroupsInput{UserPoolId: pool}); err != nil || len(gs.Groups) != 2 {
		t.Fatalf("ListGroups after DeleteGroup: %v %+v", err, gs)
	}
	if !f.audited("DeleteGroup", "", "editors") {
		t.Error("no DeleteGroup audit event")
	}
	_, err = adm.GetGroup(f.ctx, &cip.GetGroupInput{UserPoolId: aws.String("us-east-1_Nope"), GroupName: aws.String("staff")})
	wantCode(t, err, "ResourceNotFoundException")
}

// tokenGroups returns the cognito:groups of a token (nil when absent).
func tokenGroups(t *testing.T, tok *string) []string {
	t.Helper()
	var claims struct {
		Groups []string `json:"cognito:groups"`
	}
	decode(t, aws.ToString(tok), &claims)
	return claims.Groups
}

// DeleteGroup takes the group from its members: AdminListGroupsForUser no
// longer lists it, tokens issued afterwards (sign-in or refresh) no longer
// carry it, nor its role, and a group created later under the same name
// starts empty.
func TestDeleteGroupRemovesMembership(t *testing.T) {
	f := start(t)
	adm := f.admin()
	pool := aws.String(poolID)
	if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("editors")}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String("bob"), GroupName: aws.String("editors")}); err != nil {
		t.Fatal(err)
	}
	before, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil || before.AuthenticationResult == nil {
		t.Fatalf("bob sign-in: %v", err)
	}
	if got := tokenGroups(t, before.AuthenticationResult.IdToken); !slices.Equal(got, []string{"customers", "editors"}) {
		t.Fatalf("cognito:groups before DeleteGroup: %v", got)
	}

	for _, g := range []string{"editors", "customers"} {
		if _, err := adm.DeleteGroup(f.ctx, &cip.DeleteGroupInput{UserPoolId: pool, GroupName: aws.String(g)}); err != nil {
			t.Fatalf("DeleteGroup %s: %v", g, err)
		}
		lg, err := adm.AdminListGroupsForUser(f.ctx, &cip.AdminListGroupsForUserInput{UserPoolId: pool, Username: aws.String("bob")})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range lg.Groups {
			if aws.ToString(x.GroupName) == g {
				t.Errorf("AdminListGroupsForUser lists the deleted group %s", g)
			}
		}
		if g == "editors" {
			res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
			if err != nil || res.AuthenticationResult == nil {
				t.Fatalf("bob sign-in after DeleteGroup: %v", err)
			}
			for _, tok := range []*string{res.AuthenticationResult.IdToken, res.AuthenticationResult.AccessToken} {
				if got := tokenGroups(t, tok); !slices.Equal(got, []string{"customers"}) {
					t.Errorf("cognito:groups after DeleteGroup editors: %v", got)
				}
			}
		}
	}
	// Neither group is left: a refreshed token has no cognito:groups and
	// no role from the deleted customers group.
	ref, err := f.refresh(before.AuthenticationResult.RefreshToken)
	if err != nil || ref.AuthenticationResult == nil {
		t.Fatalf("refresh after DeleteGroup: %v", err)
	}
	var id map[string]any
	decode(t, aws.ToString(ref.AuthenticationResult.IdToken), &id)
	for _, c := range []string{"cognito:groups", "cognito:roles", "cognito:preferred_role"} {
		if v, ok := id[c]; ok {
			t.Errorf("refreshed ID token still has %s: %v", c, v)
		}
	}
	u, err := f.App.Core.Store.GetUser(f.ctx, poolID, "bob")
	if err != nil || len(u.Groups) != 0 {
		t.Fatalf("bob's stored groups: %v %v", err, u.Groups)
	}
	// alice (staff) is untouched.
	if a, _ := f.App.Core.Store.GetUser(f.ctx, poolID, "alice"); !slices.Equal(a.Groups, []string{"staff"}) {
		t.Errorf("alice's groups: %v", a.Groups)
	}
	// A new group of the same name inherits no member.
	if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("editors")}); err != nil {
		t.Fatal(err)
	}
	lu, err := adm.ListUsersInGroup(f.ctx, &cip.ListUsersInGroupInput{UserPoolId: pool, GroupName: aws.String("editors")})
	if err != nil || len(lu.Users) != 0 {
		t.Fatalf("members of the new editors group: %v %+v", err, lu)
	}
}

// A membership added while its group is being deleted never outlives the
// group: AdminAddUserToGroup reads the group in the transaction that
// writes the user, and DeleteGroup removes the members in the one that
// deletes it. On both stores (PostgreSQL with WRIT_TEST_POSTGRES).
func TestDeleteGroupRacingAddUserToGroup(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var opts []apptest.Option
			if backend == "postgres" {
				dsn := postgres.TestSchema(t)
				opts = append(opts, func(c *config.Config) { c.Store = dsn })
			}
			f := start(t, opts...)
			adm := f.admin()
			pool := aws.String(poolID)
			var users []string
			for i := range 8 {
				users = append(users, fmt.Sprintf("racer%d", i))
				f.createInvited(users[i], "Temp-Passw0rd1")
			}
			for round := range 10 {
				if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("editors")}); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				errs := make(chan error, len(users)+1)
				for _, u := range users {
					wg.Go(func() {
						_, err := adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String(u), GroupName: aws.String("editors")})
						if err != nil && !strings.Contains(err.Error(), "ResourceNotFoundException") {
							errs <- fmt.Errorf("AdminAddUserToGroup %s: %w", u, err)
						}
					})
				}
				wg.Go(func() {
					if _, err := adm.DeleteGroup(f.ctx, &cip.DeleteGroupInput{UserPoolId: pool, GroupName: aws.String("editors")}); err != nil {
						errs <- fmt.Errorf("DeleteGroup: %w", err)
					}
				})
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatalf("round %d: %v", round, err)
				}
				for _, name := range users {
					if u, err := f.App.Core.Store.GetUser(f.ctx, poolID, name); err != nil || slices.Contains(u.Groups, "editors") {
						t.Fatalf("round %d: %s is in the deleted group: %v %v", round, name, err, u.Groups)
					}
				}
			}
		})
	}
}

// Each new operation needs SigV4 and its own IAM action
// (cognito-idp:<Operation>): a caller allowed other admin actions but not
// these gets AccessDeniedException, an unsigned one
// MissingAuthenticationTokenException, and neither changes anything.
func TestNewAdminOpsNeedTheirIAMAction(t *testing.T) {
	f := start(t, func(c *config.Config) {
		c.IAM.Users = append(c.IAM.Users, config.IAMUser{Name: "helpdesk", AccessKeyID: "AKIAWRITHELPDESK0001",
			SecretAccessKey: config.NewSecret("helpdesk-secret"), Policy: config.NewPolicyDoc([]byte(
				`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cognito-idp:AdminGetUser","cognito-idp:ListGroups"],"Resource":"*"}]}`))})
	})
	pool := aws.String(poolID)
	f.signUp("dana", "Dana-Passw0rd1", "dana@example.com")
	calls := []struct {
		op   string
		call func(c *cip.Client) error
	}{
		{"AdminConfirmSignUp", func(c *cip.Client) error {
			_, err := c.AdminConfirmSignUp(f.ctx, &cip.AdminConfirmSignUpInput{UserPoolId: pool, Username: aws.String("dana")})
			return err
		}},
		{"AdminSetUserMFAPreference", func(c *cip.Client) error {
			_, err := c.AdminSetUserMFAPreference(f.ctx, &cip.AdminSetUserMFAPreferenceInput{UserPoolId: pool, Username: aws.String("alice"),
				SoftwareTokenMfaSettings: &types.SoftwareTokenMfaSettingsType{Enabled: false}})
			return err
		}},
		{"GetGroup", func(c *cip.Client) error {
			_, err := c.GetGroup(f.ctx, &cip.GetGroupInput{UserPoolId: pool, GroupName: aws.String("staff")})
			return err
		}},
		{"UpdateGroup", func(c *cip.Client) error {
			_, err := c.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("staff"), Precedence: aws.Int32(99)})
			return err
		}},
		{"DeleteGroup", func(c *cip.Client) error {
			_, err := c.DeleteGroup(f.ctx, &cip.DeleteGroupInput{UserPoolId: pool, GroupName: aws.String("staff")})
			return err
		}},
	}
	helpdesk := f.adminClient("AKIAWRITHELPDESK0001", "helpdesk-secret", "")
	if _, err := helpdesk.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("alice")}); err != nil {
		t.Fatalf("the helpdesk's allowed action: %v", err)
	}
	for _, c := range calls {
		e := wantCode(t, c.call(helpdesk), "AccessDeniedException")
		if !strings.Contains(e.Message, "not authorized to perform: cognito-idp:"+c.op+" on resource: arn:aws:cognito-idp:us-east-1:000000000000:userpool/"+poolID) {
			t.Errorf("%s: denial %q", c.op, e.Message)
		}
		wantCode(t, c.call(f.c), "MissingAuthenticationTokenException")
	}

	// Nothing changed.
	adm := f.admin()
	if g, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("dana")}); err != nil || g.UserStatus != types.UserStatusTypeUnconfirmed {
		t.Errorf("dana after refused calls: %v %+v", err, g)
	}
	if g, err := adm.AdminGetUser(f.ctx, &cip.AdminGetUserInput{UserPoolId: pool, Username: aws.String("alice")}); err != nil || len(g.UserMFASettingList) != 1 {
		t.Errorf("alice's MFA after refused calls: %v %+v", err, g)
	}
	if g, err := adm.GetGroup(f.ctx, &cip.GetGroupInput{UserPoolId: pool, GroupName: aws.String("staff")}); err != nil || aws.ToInt32(g.Group.Precedence) != 1 {
		t.Errorf("staff after refused calls: %v %+v", err, g)
	}
	// The administrator (Allow *) may call every one of them.
	for _, c := range calls {
		if err := c.call(adm); err != nil {
			t.Errorf("%s as administrator: %v", c.op, err)
		}
	}
}

// TestGroupNamesAndPaging: group names and role ARNs are checked as
// Cognito checks them, and ListGroups pages by Limit and NextToken (the
// SDK's paginator visits every group once).
func TestGroupNamesAndPaging(t *testing.T) {
	f := start(t)
	adm := f.admin()
	pool := aws.String(poolID)
	for _, bad := range []struct{ name, role, says string }{
		{"has space", "", "groupName"},
		{strings.Repeat("g", 129), "", "groupName"},
		{"ok", "not-an-arn", "roleArn"},
	} {
		in := &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String(bad.name)}
		if bad.role != "" {
			in.RoleArn = aws.String(bad.role)
		}
		_, err := adm.CreateGroup(f.ctx, in)
		if ge := wantCode(t, err, "InvalidParameterException"); !strings.Contains(ge.Message, bad.says) {
			t.Errorf("%q: %s", bad.name, ge.Message)
		}
	}
	for i := range 5 {
		if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String(fmt.Sprintf("team-%d", i)),
			RoleArn: aws.String("arn:aws:iam::000000000000:role/demo-staff")}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := adm.ListGroups(f.ctx, &cip.ListGroupsInput{UserPoolId: pool})
	if err != nil || all.NextToken != nil {
		t.Fatalf("ListGroups: %v %v", all, err)
	}
	seen := map[string]int{}
	pages := 0
	pg := cip.NewListGroupsPaginator(adm, &cip.ListGroupsInput{UserPoolId: pool, Limit: aws.Int32(2)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Groups) > 2 {
			t.Fatalf("a page of %d", len(out.Groups))
		}
		pages++
		for _, g := range out.Groups {
			seen[aws.ToString(g.GroupName)]++
		}
	}
	if len(seen) != len(all.Groups) || pages != (len(all.Groups)+1)/2 {
		t.Fatalf("paged %v in %d pages, want the %d groups", seen, pages, len(all.Groups))
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", name, n)
		}
	}
	_, err = adm.ListGroups(f.ctx, &cip.ListGroupsInput{UserPoolId: pool, Limit: aws.Int32(61)})
	wantCode(t, err, "InvalidParameterException")
	// A NextToken writ did not give (here a group's name in base64) is refused.
	_, err = adm.ListGroups(f.ctx, &cip.ListGroupsInput{UserPoolId: pool, NextToken: aws.String("c3RhZmY")})
	wantCode(t, err, "InvalidParameterException")
	// 0, which Cognito takes, means its default.
	if zero, err := adm.ListGroups(f.ctx, &cip.ListGroupsInput{UserPoolId: pool, Limit: aws.Int32(0)}); err != nil || len(zero.Groups) != len(all.Groups) {
		t.Fatalf("Limit 0: %v %v", zero, err)
	}
}

// Groups made and changed through the API decide the roles in the ID
// token as configured ones do, under Cognito's precedence rules: lowest
// first, unset last; groups tied first with different roles leave
// cognito:preferred_role out, with the same role they name it.
func TestGroupRolesFromTheAPI(t *testing.T) {
	f := start(t)
	adm := f.admin()
	pool := aws.String(poolID)
	const (
		user  = "arn:aws:iam::000000000000:role/demo-user"
		leads = "arn:aws:iam::000000000000:role/leads"
		ops   = "arn:aws:iam::000000000000:role/ops"
	)
	roles := func() ([]any, any) {
		t.Helper()
		f.Clock.Advance(time.Second)
		out, err := f.passwordAuth("bob", "Bob-Passw0rd1")
		if err != nil || out.AuthenticationResult == nil {
			t.Fatalf("sign-in: %v", err)
		}
		var id map[string]any
		decode(t, aws.ToString(out.AuthenticationResult.IdToken), &id)
		rs, _ := id["cognito:roles"].([]any)
		return rs, id["cognito:preferred_role"]
	}
	// A group without precedence ranks after bob's customers (precedence 10).
	c, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("leads"), RoleArn: aws.String(leads)})
	if err != nil || c.Group.Precedence != nil {
		t.Fatalf("CreateGroup without precedence: %v %+v", err, c)
	}
	created := aws.ToTime(c.Group.CreationDate)
	if _, err := adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String("bob"), GroupName: aws.String("leads")}); err != nil {
		t.Fatal(err)
	}
	if rs, pref := roles(); pref != user || !slices.Equal(rs, []any{user, leads}) {
		t.Fatalf("leads without precedence: roles %v preferred %v", rs, pref)
	}
	// Precedence 0 puts it first.
	f.Clock.Advance(time.Minute)
	up, err := adm.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("leads"), Precedence: aws.Int32(0)})
	if err != nil || aws.ToInt32(up.Group.Precedence) != 0 || up.Group.Precedence == nil {
		t.Fatalf("UpdateGroup: %v %+v", err, up)
	}
	if g, err := adm.GetGroup(f.ctx, &cip.GetGroupInput{UserPoolId: pool, GroupName: aws.String("leads")}); err != nil ||
		!aws.ToTime(g.Group.CreationDate).Equal(created) || !aws.ToTime(g.Group.LastModifiedDate).After(created) {
		t.Fatalf("GetGroup dates after UpdateGroup: %v %+v (created %v)", err, g, created)
	}
	if rs, pref := roles(); pref != leads || !slices.Equal(rs, []any{leads, user}) {
		t.Fatalf("leads at precedence 0: roles %v preferred %v", rs, pref)
	}
	// Tied first with another role: no preferred role.
	if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("ops"), RoleArn: aws.String(ops), Precedence: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String("bob"), GroupName: aws.String("ops")}); err != nil {
		t.Fatal(err)
	}
	if rs, pref := roles(); pref != nil || len(rs) != 3 || rs[2] != user {
		t.Fatalf("two groups at precedence 0: roles %v preferred %v", rs, pref)
	}
	// Tied first with the same role: that role.
	if _, err := adm.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("ops"), RoleArn: aws.String(leads)}); err != nil {
		t.Fatal(err)
	}
	if rs, pref := roles(); pref != leads || !slices.Equal(rs, []any{leads, user}) {
		t.Fatalf("two groups at precedence 0 with one role: roles %v preferred %v", rs, pref)
	}
	// A deleted group's role goes with it.
	for _, g := range []string{"ops", "leads"} {
		if _, err := adm.DeleteGroup(f.ctx, &cip.DeleteGroupInput{UserPoolId: pool, GroupName: aws.String(g)}); err != nil {
			t.Fatal(err)
		}
	}
	if rs, pref := roles(); pref != user || !slices.Equal(rs, []any{user}) {
		t.Fatalf("after DeleteGroup: roles %v preferred %v", rs, pref)
	}
}

// Refreshes of a user in a group, as many at once as the PostgreSQL pool
// has connections and more, all complete: the ID token's roles are read
// in the refresh's own transaction, never on a second connection that a
// refresh holding one would wait for while the others hold the rest.
func TestConcurrentRefreshesWithASmallPool(t *testing.T) {
	dsn := postgres.TestSchema(t)
	f := start(t, func(c *config.Config) { c.Store, c.StorePool.MaxOpen = dsn, 2 })
	var tokens []*string
	for range 8 {
		out, err := f.passwordAuth("bob", "Bob-Passw0rd1")
		if err != nil || out.AuthenticationResult == nil {
			t.Fatalf("sign-in: %v", err)
		}
		tokens = append(tokens, out.AuthenticationResult.RefreshToken)
	}
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(tokens))
	for _, rt := range tokens {
		wg.Go(func() {
			out, err := f.c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeRefreshTokenAuth,
				ClientId: aws.String("demo-web"), AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(rt)}})
			if err == nil && aws.ToString(out.AuthenticationResult.IdToken) == "" {
				err = errors.New("no ID token")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
	}
}

// Giving a group a role grants it to the group's members (their ID
// tokens, and through an identity pool their credentials), so CreateGroup
// and UpdateGroup with a RoleArn also need iam:PassRole on that role (with
// iam:PassedToService cognito-idp.amazonaws.com); a refusal changes nothing.
func TestGroupRoleNeedsPassRole(t *testing.T) {
	const (
		leads = "arn:aws:iam::000000000000:role/leads"
		staff = "arn:aws:iam::000000000000:role/demo-staff"
	)
	f := start(t, func(c *config.Config) {
		c.IAM.Users = append(c.IAM.Users, config.IAMUser{Name: "groups-admin", AccessKeyID: "AKIAWRITGROUPS000001",
			SecretAccessKey: config.NewSecret("groups-admin-secret"), Policy: config.NewPolicyDoc([]byte(
				`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cognito-idp:*","Resource":"*"},
				 {"Effect":"Allow","Action":"iam:PassRole","Resource":"` + leads + `",
				  "Condition":{"StringEquals":{"iam:PassedToService":"cognito-idp.amazonaws.com"}}}]}`))})
	})
	adm := f.adminClient("AKIAWRITGROUPS000001", "groups-admin-secret", "")
	pool := aws.String(poolID)
	denied := func(what string, err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" || !strings.Contains(ae.ErrorMessage(), "iam:PassRole on resource: "+staff) {
			t.Fatalf("%s: %v, want AccessDeniedException for iam:PassRole", what, err)
		}
	}
	_, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("admins"), RoleArn: aws.String(staff)})
	denied("CreateGroup with another role", err)
	if _, err := adm.GetGroup(f.ctx, &cip.GetGroupInput{UserPoolId: pool, GroupName: aws.String("admins")}); err == nil {
		t.Fatal("a refused CreateGroup created the group")
	}
	if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("leads"), RoleArn: aws.String(leads)}); err != nil {
		t.Fatalf("CreateGroup with the role it may pass: %v", err)
	}
	_, err = adm.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("leads"), RoleArn: aws.String(staff)})
	denied("UpdateGroup to another role", err)
	if g, err := adm.GetGroup(f.ctx, &cip.GetGroupInput{UserPoolId: pool, GroupName: aws.String("leads")}); err != nil || aws.ToString(g.Group.RoleArn) != leads {
		t.Fatalf("after a refused UpdateGroup: %v %+v", err, g)
	}
	// Without a role, no iam:PassRole is needed.
	if _, err := adm.UpdateGroup(f.ctx, &cip.UpdateGroupInput{UserPoolId: pool, GroupName: aws.String("staff"), Description: aws.String("Staff")}); err != nil {
		t.Fatalf("UpdateGroup without a role: %v", err)
	}
	if _, err := adm.CreateGroup(f.ctx, &cip.CreateGroupInput{UserPoolId: pool, GroupName: aws.String("plain")}); err != nil {
		t.Fatalf("CreateGroup without a role: %v", err)
	}
}

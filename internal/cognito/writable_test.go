package cognito_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

// userWritable lists custom attributes that users may write themselves
// (user_writable_attributes).
func userWritable(names ...string) apptest.Option {
	return func(c *config.Config) { c.UserPools[0].UserWritableAttributes = names }
}

func wantUnauthorizedAttr(t *testing.T, what string, err error) {
	t.Helper()
	if e := wantCode(t, err, "NotAuthorizedException"); e.Message != "A client attempted to write unauthorized attribute" {
		t.Errorf("%s: message %q", what, e.Message)
	}
}

// Custom attributes are written by administrators unless the pool lists
// them in user_writable_attributes: a user cannot pick custom:department,
// which the reference identity pool maps to the department principal tag
// (and a role rule may match), through any user operation.
func TestCustomAttributesAreAdminWrittenByDefault(t *testing.T) {
	f := start(t, userWritable("custom:nickname"))
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	at := res.AuthenticationResult.AccessToken
	update := func(attrs ...types.AttributeType) error {
		_, err := f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: at, UserAttributes: attrs})
		return err
	}
	del := func(names ...string) error {
		_, err := f.c.DeleteUserAttributes(f.ctx, &cip.DeleteUserAttributesInput{AccessToken: at, UserAttributeNames: names})
		return err
	}
	wantUnauthorizedAttr(t, "UpdateUserAttributes", update(attr("custom:department", "engineering")))
	wantUnauthorizedAttr(t, "UpdateUserAttributes beside a writable one", update(attr("name", "Bob"), attr("custom:department", "engineering")))
	wantUnauthorizedAttr(t, "DeleteUserAttributes", del("custom:department"))
	if a := f.userAttrs(at); a["custom:department"] != "" || a["name"] != "" {
		t.Fatalf("refused updates changed attributes: %v", a)
	}
	// A listed custom attribute is the user's.
	if err := update(attr("custom:nickname", "bobby")); err != nil {
		t.Fatalf("listed attribute: %v", err)
	}
	if a := f.userAttrs(at); a["custom:nickname"] != "bobby" {
		t.Fatalf("after the update: %v", a)
	}
	if err := del("custom:nickname"); err != nil {
		t.Fatalf("deleting a listed attribute: %v", err)
	}

	// SignUp.
	signUp := func(user string, a types.AttributeType) error {
		_, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String(user),
			Password: aws.String("Carol-Passw0rd"), UserAttributes: []types.AttributeType{attr("email", user+"@example.com"), a}})
		return err
	}
	wantUnauthorizedAttr(t, "SignUp", signUp("carol", attr("custom:department", "engineering")))
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused sign-up left a user behind: %v", err)
	}
	if err := signUp("carol", attr("custom:nickname", "caz")); err != nil {
		t.Fatalf("SignUp with a listed attribute: %v", err)
	}

	// NEW_PASSWORD_REQUIRED.
	f.createInvited("henry", "Temp-Passw0rd1")
	out, err := f.passwordAuth("henry", "Temp-Passw0rd1")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("want NEW_PASSWORD_REQUIRED: %v", err)
	}
	_, err = f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: types.ChallengeNameTypeNewPasswordRequired, Session: out.Session, ChallengeResponses: map[string]string{
			"USERNAME": "henry", "NEW_PASSWORD": "Henry-Passw0rd1", "userAttributes.custom:department": "engineering"}})
	wantUnauthorizedAttr(t, "NEW_PASSWORD_REQUIRED", err)

	// An administrator may write any custom attribute; it reaches the token.
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	if _, err := adm.AdminUpdateUserAttributes(f.ctx, &cip.AdminUpdateUserAttributesInput{UserPoolId: aws.String(poolID),
		Username: aws.String("bob"), UserAttributes: []types.AttributeType{attr("custom:department", "support")}}); err != nil {
		t.Fatalf("AdminUpdateUserAttributes: %v", err)
	}
	res, err = f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	var id map[string]any
	decode(t, aws.ToString(res.AuthenticationResult.IdToken), &id)
	if id["custom:department"] != "support" {
		t.Errorf("ID token custom:department = %v", id["custom:department"])
	}
}

// user_writable_attributes lists custom attributes only.
func TestUserWritableAttributesValidated(t *testing.T) {
	src := strings.Replace(string(examples.ReferenceConfig), "    name: demo\n    signing_alg",
		"    name: demo\n    user_writable_attributes: [department, \"custom:nickname\", \"custom:\"]\n    signing_alg", 1)
	_, err := config.Parse([]byte(src), filepath.Join(t.TempDir(), "writ.yaml"))
	if err == nil {
		t.Fatal("accepted non-custom user_writable_attributes")
	}
	for _, want := range []string{"user_pools[0].user_writable_attributes[0]", "user_pools[0].user_writable_attributes[2]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "user_writable_attributes[1]") {
		t.Errorf("custom:nickname refused: %v", err)
	}
}

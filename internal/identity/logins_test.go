package identity_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"

	"github.com/writ-id/writ/internal/apptest"
)

// mismatched is Cognito's message for logins that do not name one identity.
const mismatched = "Logins don't match. Please include at least one valid login for this identity or identity pool."

// awsLoginKey is Cognito's name for the user pool as a Logins key.
const awsLoginKey = "cognito-idp.us-east-1.amazonaws.com/" + poolID

// TestLoginsOfDifferentUsersRefused: Logins whose tokens are of different
// users (here both keys name the same pool: writ's issuer and Cognito's
// name for it) identify no single identity: GetId,
// GetCredentialsForIdentity and GetOpenIdToken refuse them every time,
// whichever identity is asked for, instead of picking one login at random.
// Two keys of one provider with tokens of the same user are one login.
func TestLoginsOfDifferentUsersRefused(t *testing.T) {
	f := start(t, apptest.ClassicFlow)
	alice, bob := f.signIn("alice", "Alice-Passw0rd"), f.signIn("bob", "Bob-Passw0rd1")
	getID := func(logins map[string]string) (string, error) {
		t.Helper()
		out, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.IdentityId), nil
	}
	aliceID, err := getID(map[string]string{f.loginKey(): alice})
	if err != nil {
		t.Fatal(err)
	}
	bobID, err := getID(map[string]string{awsLoginKey: bob})
	if err != nil {
		t.Fatal(err)
	}
	mixed := map[string]string{f.loginKey(): alice, awsLoginKey: bob}
	refused := func(what string, err error) {
		t.Helper()
		if code(err) != "NotAuthorizedException" || !strings.Contains(err.Error(), mismatched) {
			t.Fatalf("%s with alice's and bob's logins: %v; want NotAuthorizedException %q", what, err, mismatched)
		}
	}
	// A random choice between two logins would pass 30 tries in a row
	// about once in a billion.
	for range 30 {
		id, err := getID(mixed)
		refused("GetId (answered "+id+")", err)
		for _, id := range []string{aliceID, bobID} {
			_, err = f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: aws.String(id), Logins: mixed})
			refused("GetCredentialsForIdentity("+id+")", err)
			_, err = f.ci.GetOpenIdToken(f.ctx, &ci.GetOpenIdTokenInput{IdentityId: aws.String(id), Logins: mixed})
			refused("GetOpenIdToken("+id+")", err)
		}
	}

	// Both names of the pool with alice's tokens (two sign-ins) are alice.
	same := map[string]string{f.loginKey(): alice, awsLoginKey: f.signIn("alice", "Alice-Passw0rd")}
	for range 5 {
		id, err := getID(same)
		if err != nil || id != aliceID {
			t.Fatalf("GetId with two logins of alice: %q %v; want %q", id, err, aliceID)
		}
		if _, err := f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: aws.String(aliceID), Logins: same}); err != nil {
			t.Fatalf("GetCredentialsForIdentity with two logins of alice: %v", err)
		}
		_, err = f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: aws.String(bobID), Logins: same})
		refused("GetCredentialsForIdentity(bob) with alice's logins", err)
	}
}

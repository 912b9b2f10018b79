package cognito_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/config"
)

func (f *fixture) respondMFA(user string, session *string, code string) (*cip.RespondToAuthChallengeOutput, error) {
	return f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{
		ClientId: aws.String("demo-web"), ChallengeName: types.ChallengeNameTypeSoftwareTokenMfa, Session: session,
		ChallengeResponses: map[string]string{"USERNAME": user, "SOFTWARE_TOKEN_MFA_CODE": code}})
}

// mfaChallenge signs alice in with her password and returns the TOTP
// challenge's session.
func (f *fixture) mfaChallenge() *string {
	f.t.Helper()
	out, err := f.passwordAuth("alice", "Alice-Passw0rd")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		f.t.Fatalf("want SOFTWARE_TOKEN_MFA: %v", err)
	}
	return out.Session
}

func wantLockedOut(t *testing.T, err error) {
	t.Helper()
	if e := wantCode(t, err, "NotAuthorizedException"); e.Message != "Password attempts exceeded" {
		t.Fatalf("want lockout, got %q", e.Message)
	}
}

// Wrong TOTP codes count toward the user's lockout as wrong passwords do
// (lockout: 5 in 15m in the reference configuration), across sign-ins.
func TestWrongMFACodesLockOut(t *testing.T) {
	f := start(t)
	wrong := func() string { return wrongCode(f.totp(aliceSecret)) }
	s := f.mfaChallenge()
	for range 3 { // the session allows three tries
		_, err := f.respondMFA("alice", s, wrong())
		wantCode(t, err, "CodeMismatchException")
	}
	s = f.mfaChallenge()
	for range 2 {
		_, err := f.respondMFA("alice", s, wrong())
		wantCode(t, err, "CodeMismatchException")
	}
	// Five wrong codes: even the right code on a live session is refused,
	// and so is the next sign-in with the right password.
	_, err := f.respondMFA("alice", s, f.totp(aliceSecret))
	wantLockedOut(t, err)
	_, err = f.passwordAuth("alice", "Alice-Passw0rd")
	wantLockedOut(t, err)
	// Other users are not affected; alice is back after the window.
	if res, err := f.passwordAuth("bob", "Bob-Passw0rd1"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("bob: %v", err)
	}
	f.Clock.Advance(16 * time.Minute)
	f.signInAlice()

	// A right password alone does not clear earlier failures.
	for range 4 {
		_, err := f.passwordAuth("alice", "Wrong-Passw0rd1")
		wantCode(t, err, "NotAuthorizedException")
	}
	s = f.mfaChallenge()
	_, err = f.respondMFA("alice", s, wrong())
	wantCode(t, err, "CodeMismatchException")
	_, err = f.passwordAuth("alice", "Alice-Passw0rd")
	wantLockedOut(t, err)

	// A completed sign-in does.
	f.Clock.Advance(16 * time.Minute)
	for range 4 {
		_, err := f.passwordAuth("alice", "Wrong-Passw0rd1")
		wantCode(t, err, "NotAuthorizedException")
	}
	f.signInAlice()
	for range 4 {
		_, err := f.passwordAuth("alice", "Wrong-Passw0rd1")
		wantCode(t, err, "NotAuthorizedException")
	}
	f.signInAlice()
}

// AdminInitiateAuth is called by a signed admin, not from the user's
// address: it has no per-source throttle (which would let 100 failures
// lock every user out of the admin flow), only the per-user lockout.
func TestAdminInitiateAuthNotThrottledPerSource(t *testing.T) {
	f := start(t, func(c *config.Config) {
		c.UserPools[0].Clients[0].Flows = append(c.UserPools[0].Clients[0].Flows, "admin_user_password")
	})
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	auth := func(user, pw string) (*cip.AdminInitiateAuthOutput, error) {
		return adm.AdminInitiateAuth(f.ctx, &cip.AdminInitiateAuthInput{UserPoolId: aws.String(poolID), ClientId: aws.String("demo-web"),
			AuthFlow: types.AuthFlowTypeAdminUserPasswordAuth, AuthParameters: map[string]string{"USERNAME": user, "PASSWORD": pw}})
	}
	for i := range 110 {
		_, err := auth(fmt.Sprintf("nobody-%d", i), "Wrong-Passw0rd1")
		wantCode(t, err, "NotAuthorizedException")
	}
	if res, err := auth("bob", "Bob-Passw0rd1"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("admin sign-in after 110 failures for other users: %v", err)
	}
	// The per-user lockout holds in the admin flow.
	for range 5 {
		_, err := auth("bob", "Wrong-Passw0rd1")
		wantCode(t, err, "NotAuthorizedException")
	}
	_, err := auth("bob", "Bob-Passw0rd1")
	wantLockedOut(t, err)
	// The user-facing flow keeps its per-source throttle.
	for i := range 100 {
		_, err := f.passwordAuth(fmt.Sprintf("nobody-%d", i), "Wrong-Passw0rd1")
		wantCode(t, err, "NotAuthorizedException")
	}
	_, err = f.passwordAuth("alice", "Alice-Passw0rd")
	wantCode(t, err, "TooManyRequestsException")
}

// AdminDeleteUser clears the user's lockout counter: a new user of the
// same name is not locked out by the old one's failures.
func TestDeletedUsersLockoutDoesNotCarryOver(t *testing.T) {
	f := start(t)
	for range 5 {
		_, err := f.passwordAuth("bob", "Wrong-Passw0rd1")
		wantCode(t, err, "NotAuthorizedException")
	}
	_, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	wantLockedOut(t, err)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	if _, err := adm.AdminDeleteUser(f.ctx, &cip.AdminDeleteUserInput{UserPoolId: aws.String(poolID), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	f.createInvited("bob", "Temp-Passw0rd1")
	if out, err := f.passwordAuth("bob", "Temp-Passw0rd1"); err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("the new bob: %v", err)
	}
}

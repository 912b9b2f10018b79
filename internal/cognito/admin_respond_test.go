package cognito_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/config"
)

// adminFlow lets demo-web use ADMIN_USER_PASSWORD_AUTH.
func adminFlow(c *config.Config) {
	c.UserPools[0].Clients[0].Flows = append(c.UserPools[0].Clients[0].Flows, "admin_user_password")
}

func (f *fixture) adminAuth(user, pw string) *cip.AdminInitiateAuthOutput {
	f.t.Helper()
	out, err := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "").AdminInitiateAuth(f.ctx, &cip.AdminInitiateAuthInput{
		UserPoolId: aws.String(poolID), ClientId: aws.String("demo-web"), AuthFlow: types.AuthFlowTypeAdminUserPasswordAuth,
		AuthParameters: map[string]string{"USERNAME": user, "PASSWORD": pw}})
	if err != nil {
		f.t.Fatalf("AdminInitiateAuth %s: %v", user, err)
	}
	return out
}

func (f *fixture) adminRespond(challenge types.ChallengeNameType, session *string, responses map[string]string) (*cip.AdminRespondToAuthChallengeOutput, error) {
	return f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "").AdminRespondToAuthChallenge(f.ctx, &cip.AdminRespondToAuthChallengeInput{
		UserPoolId: aws.String(poolID), ClientId: aws.String("demo-web"), ChallengeName: challenge, Session: session, ChallengeResponses: responses})
}

// AdminRespondToAuthChallenge completes what AdminInitiateAuth starts:
// the TOTP challenge (a wrong code keeps the session, a right one signs
// in, the session is then spent) and NEW_PASSWORD_REQUIRED.
func TestAdminRespondToAuthChallenge(t *testing.T) {
	f := start(t, adminFlow)
	out := f.adminAuth("alice", "Alice-Passw0rd")
	if out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		t.Fatalf("want SOFTWARE_TOKEN_MFA, got %q", out.ChallengeName)
	}
	code := f.totp(aliceSecret)
	_, err := f.adminRespond(out.ChallengeName, out.Session, map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": wrongCode(code)})
	wantCode(t, err, "CodeMismatchException")
	r, err := f.adminRespond(out.ChallengeName, out.Session, map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code})
	if err != nil || r.AuthenticationResult == nil || aws.ToString(r.AuthenticationResult.RefreshToken) == "" {
		t.Fatalf("MFA completion: %v", err)
	}
	var id map[string]any
	decode(t, aws.ToString(r.AuthenticationResult.IdToken), &id)
	if id["cognito:username"] != "alice" || id["aud"] != "demo-web" {
		t.Errorf("ID token: %v", id)
	}
	if u, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: r.AuthenticationResult.AccessToken}); err != nil || aws.ToString(u.Username) != "alice" {
		t.Fatalf("GetUser with the admin-flow token: %v", err)
	}
	_, err = f.adminRespond(out.ChallengeName, out.Session, map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code})
	wantCode(t, err, "NotAuthorizedException")

	// NEW_PASSWORD_REQUIRED for an invited user.
	f.createInvited("nora", "Temp-Passw0rd1", attr("email", "nora@example.com"))
	out = f.adminAuth("nora", "Temp-Passw0rd1")
	if out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("want NEW_PASSWORD_REQUIRED, got %q", out.ChallengeName)
	}
	_, err = f.adminRespond(out.ChallengeName, out.Session, map[string]string{"USERNAME": "nora", "NEW_PASSWORD": "weak"})
	wantCode(t, err, "InvalidPasswordException")
	r, err = f.adminRespond(out.ChallengeName, out.Session, map[string]string{"USERNAME": "nora", "NEW_PASSWORD": "Nora-Passw0rd1",
		"userAttributes.name": "Nora"})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("new password: %v", err)
	}
	if res, err := f.passwordAuth("nora", "Nora-Passw0rd1"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("sign-in with the new password: %v", err)
	}

	// The admin API needs a signature, and a client of the pool.
	_, err = f.c.AdminRespondToAuthChallenge(f.ctx, &cip.AdminRespondToAuthChallengeInput{UserPoolId: aws.String(poolID),
		ClientId: aws.String("demo-web"), ChallengeName: types.ChallengeNameTypeSoftwareTokenMfa, Session: aws.String("x")})
	wantCode(t, err, "MissingAuthenticationTokenException")
	_, err = f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "").AdminRespondToAuthChallenge(f.ctx, &cip.AdminRespondToAuthChallengeInput{
		UserPoolId: aws.String(poolID), ClientId: aws.String("nope"), ChallengeName: types.ChallengeNameTypeSoftwareTokenMfa, Session: aws.String("x")})
	wantCode(t, err, "ResourceNotFoundException")
}

// MFA_SETUP through the admin pair: AdminInitiateAuth, then
// AssociateSoftwareToken and VerifySoftwareToken with the session, then
// AdminRespondToAuthChallenge with VerifySoftwareToken's session.
func TestAdminRespondToAuthChallengeMFASetup(t *testing.T) {
	f := start(t, adminFlow, func(c *config.Config) { c.UserPools[0].MFA = "required" })
	out := f.adminAuth("bob", "Bob-Passw0rd1")
	if out.ChallengeName != types.ChallengeNameTypeMfaSetup {
		t.Fatalf("want MFA_SETUP, got %q", out.ChallengeName)
	}
	vSession := f.enrolBySession(out.Session)
	r, err := f.adminRespond(types.ChallengeNameTypeMfaSetup, vSession, map[string]string{"USERNAME": "bob"})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("MFA_SETUP completion: %v", err)
	}
	if out := f.adminAuth("bob", "Bob-Passw0rd1"); out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		t.Fatalf("after setup: %q", out.ChallengeName)
	}
}

// A refused answer to a challenge (for another client, another challenge
// or another user) leaves the session to the right answer, in both the
// admin and the public flow; so does AssociateSoftwareToken given a
// session of another challenge.
func TestRefusedChallengeResponseKeepsSession(t *testing.T) {
	f := start(t, adminFlow)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	out := f.adminAuth("alice", "Alice-Passw0rd")
	code := f.totp(aliceSecret)
	answer := map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code}
	_, err := adm.AdminRespondToAuthChallenge(f.ctx, &cip.AdminRespondToAuthChallengeInput{UserPoolId: aws.String(poolID),
		ClientId: aws.String("files-service"), ChallengeName: out.ChallengeName, Session: out.Session, ChallengeResponses: answer})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.adminRespond(types.ChallengeNameTypeNewPasswordRequired, out.Session,
		map[string]string{"USERNAME": "alice", "NEW_PASSWORD": "Alice-Other-Passw0rd1"})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.adminRespond(out.ChallengeName, out.Session, map[string]string{"USERNAME": "bob", "SOFTWARE_TOKEN_MFA_CODE": code})
	wantCode(t, err, "NotAuthorizedException")
	if r, err := f.adminRespond(out.ChallengeName, out.Session, answer); err != nil || r.AuthenticationResult == nil {
		t.Fatalf("right answer after refused ones: %v", err)
	}
	f.Clock.Advance(30 * time.Second)

	s := f.mfaChallenge()
	answer["SOFTWARE_TOKEN_MFA_CODE"] = f.totp(aliceSecret)
	_, err = f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("files-service"),
		ChallengeName: types.ChallengeNameTypeSoftwareTokenMfa, Session: s, ChallengeResponses: answer})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: types.ChallengeNameTypeMfaSetup, Session: s, ChallengeResponses: map[string]string{"USERNAME": "alice"}})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.c.AssociateSoftwareToken(f.ctx, &cip.AssociateSoftwareTokenInput{Session: s})
	wantCode(t, err, "NotAuthorizedException")
	if r, err := f.respondMFA("alice", s, answer["SOFTWARE_TOKEN_MFA_CODE"]); err != nil || r.AuthenticationResult == nil {
		t.Fatalf("right answer after refused ones: %v", err)
	}
}

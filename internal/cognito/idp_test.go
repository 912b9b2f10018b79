package cognito_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

const (
	poolID      = "us-east-1_WritDemo1"
	aliceSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

type fixture struct {
	*apptest.Env
	c   *cip.Client
	ctx context.Context
	t   *testing.T
}

func start(t *testing.T, opts ...apptest.Option) *fixture {
	t.Helper()
	env := apptest.Start(t, opts...)
	c := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.IDP)),
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	return &fixture{Env: env, c: c, ctx: context.Background(), t: t}
}

func (f *fixture) totp(secret string) string {
	f.t.Helper()
	code, err := userpool.TOTPNow(secret, f.Clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return code
}

// wantCode asserts err is an API error with the given Cognito code.
func wantCode(t *testing.T, err error, code string) *smithy.GenericAPIError {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got non-API error %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	return &smithy.GenericAPIError{Code: ae.ErrorCode(), Message: ae.ErrorMessage()}
}

func (f *fixture) passwordAuth(user, pw string) (*cip.InitiateAuthOutput, error) {
	return f.c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{
		AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": user, "PASSWORD": pw},
	})
}

// signInAlice runs password + TOTP and returns her tokens.
func (f *fixture) signInAlice() *types.AuthenticationResultType {
	f.t.Helper()
	out, err := f.passwordAuth("alice", "Alice-Passw0rd")
	if err != nil {
		f.t.Fatalf("InitiateAuth: %v", err)
	}
	if out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa || aws.ToString(out.Session) == "" {
		f.t.Fatalf("want SOFTWARE_TOKEN_MFA challenge, got %q", out.ChallengeName)
	}
	resp, err := f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{
		ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName, Session: out.Session,
		ChallengeResponses: map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": f.totp(aliceSecret)},
	})
	if err != nil {
		f.t.Fatalf("RespondToAuthChallenge: %v", err)
	}
	f.Clock.Advance(30 * time.Second) // next sign-in gets a fresh TOTP window
	return resp.AuthenticationResult
}

// enrolBySession enrols a TOTP secret during MFA_SETUP (the challenge's
// session): AssociateSoftwareToken, then VerifySoftwareToken with a code.
// It returns the session to answer the challenge with.
func (f *fixture) enrolBySession(session *string) *string {
	f.t.Helper()
	assoc, err := f.c.AssociateSoftwareToken(f.ctx, &cip.AssociateSoftwareTokenInput{Session: session})
	if err != nil {
		f.t.Fatal(err)
	}
	secret := aws.ToString(assoc.SecretCode)
	v, err := f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{Session: assoc.Session, UserCode: aws.String(f.totp(secret))})
	if err != nil {
		f.t.Fatal(err)
	}
	return v.Session
}

func (f *fixture) issuer() string { return f.App.URL(app.IDP) + "/" + poolID }

func TestSignInWithTOTPAndVerifyWithGoOIDC(t *testing.T) {
	f := start(t)
	ar := f.signInAlice()
	if ar.ExpiresIn != 3600 || aws.ToString(ar.TokenType) != "Bearer" || aws.ToString(ar.RefreshToken) == "" {
		t.Fatalf("authentication result: expires %d type %q refresh %t", ar.ExpiresIn, aws.ToString(ar.TokenType), ar.RefreshToken != nil)
	}
	// go-oidc verifies against the real clock; the fixture's clock is now.
	prov, err := oidc.NewProvider(f.ctx, f.issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: "demo-web", SupportedSigningAlgs: []string{"ES256"}}).Verify(f.ctx, aws.ToString(ar.IdToken))
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var id map[string]any
	idt.Claims(&id)
	wantClaims(t, "id", id, map[string]any{
		"token_use": "id", "aud": "demo-web", "cognito:username": "alice", "email": "alice@example.com",
		"email_verified": true, "custom:department": "engineering", "iss": f.issuer(),
		"cognito:preferred_role": "arn:aws:iam::000000000000:role/demo-staff",
	})
	if g, _ := json.Marshal(id["cognito:groups"]); string(g) != `["staff"]` {
		t.Errorf("cognito:groups = %s", g)
	}
	if r, _ := json.Marshal(id["cognito:roles"]); string(r) != `["arn:aws:iam::000000000000:role/demo-staff"]` {
		t.Errorf("cognito:roles = %s", r)
	}
	if amr, _ := json.Marshal(id["amr"]); !strings.Contains(string(amr), `"otp"`) || !strings.Contains(string(amr), `"pwd"`) {
		t.Errorf("amr = %s, want pwd and otp", amr)
	}
	for _, k := range []string{"sub", "auth_time", "exp", "iat", "jti", "origin_jti", "event_id"} {
		if id[k] == nil {
			t.Errorf("ID token lacks %s", k)
		}
	}
	if exp, iat := id["exp"].(float64), id["iat"].(float64); exp-iat != 3600 {
		t.Errorf("ID token exp-iat = %v, want 3600", exp-iat)
	}
	// The access token verifies with go-oidc too, as a JWT of the same
	// issuer (its client in client_id), but never as the client's ID
	// token: it has no aud.
	if _, err := prov.Verifier(&oidc.Config{ClientID: "demo-web"}).Verify(f.ctx, aws.ToString(ar.AccessToken)); err == nil {
		t.Error("the access token passes as demo-web's ID token")
	}
	at, err := prov.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(f.ctx, aws.ToString(ar.AccessToken))
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	var acc map[string]any
	at.Claims(&acc)
	if _, ok := acc["aud"]; ok {
		t.Errorf("the access token has an aud (%v): an OpenID Connect library would take it for an ID token", acc["aud"])
	}
	wantClaims(t, "access", acc, map[string]any{"token_use": "access", "client_id": "demo-web",
		"username": "alice", "scope": "aws.cognito.signin.user.admin", "sub": id["sub"],
		"origin_jti": id["origin_jti"], "event_id": id["event_id"]})
	if acc["jti"] == id["jti"] {
		t.Error("ID and access tokens share a jti")
	}
	// JWKS is cacheable, but not for longer than the activation delay.
	resp, err := http.Get(f.issuer() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=300") {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}
}

func wantClaims(t *testing.T, name string, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s token %s = %v, want %v", name, k, got[k], v)
		}
	}
}

func TestGetUserUpdateAttributesAndChangePassword(t *testing.T) {
	f := start(t, userWritable("custom:team"))
	ar := f.signInAlice()
	u, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: ar.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{}
	for _, a := range u.UserAttributes {
		attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	if aws.ToString(u.Username) != "alice" || attrs["email"] != "alice@example.com" || attrs["custom:department"] != "engineering" || attrs["sub"] == "" {
		t.Fatalf("GetUser: %s %v", aws.ToString(u.Username), attrs)
	}
	if aws.ToString(u.PreferredMfaSetting) != "SOFTWARE_TOKEN_MFA" {
		t.Errorf("PreferredMfaSetting = %q", aws.ToString(u.PreferredMfaSetting))
	}
	_, err = f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: ar.AccessToken,
		UserAttributes: []types.AttributeType{{Name: aws.String("custom:team"), Value: aws.String("research")},
			{Name: aws.String("name"), Value: aws.String("Alice A.")}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.c.UpdateUserAttributes(f.ctx, &cip.UpdateUserAttributesInput{AccessToken: ar.AccessToken,
		UserAttributes: []types.AttributeType{{Name: aws.String("sub"), Value: aws.String("forged")}}})
	wantCode(t, err, "NotAuthorizedException")
	ar2 := f.signInAlice()
	var claims map[string]any
	decode(t, aws.ToString(ar2.IdToken), &claims)
	if claims["custom:team"] != "research" || claims["name"] != "Alice A." || claims["custom:department"] != "engineering" {
		t.Errorf("new ID token does not carry updated attributes: %v", claims)
	}

	_, err = f.c.ChangePassword(f.ctx, &cip.ChangePasswordInput{AccessToken: ar.AccessToken,
		PreviousPassword: aws.String("wrong-Passw0rd"), ProposedPassword: aws.String("Alice-Passw0rd-2")})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.c.ChangePassword(f.ctx, &cip.ChangePasswordInput{AccessToken: ar.AccessToken,
		PreviousPassword: aws.String("Alice-Passw0rd"), ProposedPassword: aws.String("weak")})
	wantCode(t, err, "InvalidPasswordException")
	_, err = f.c.ChangePassword(f.ctx, &cip.ChangePasswordInput{AccessToken: ar.AccessToken,
		PreviousPassword: aws.String("Alice-Passw0rd"), ProposedPassword: aws.String("Alice-Passw0rd-2")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.passwordAuth("alice", "Alice-Passw0rd")
	wantCode(t, err, "NotAuthorizedException")
	if out, err := f.passwordAuth("alice", "Alice-Passw0rd-2"); err != nil || out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		t.Fatalf("sign-in with new password: %v", err)
	}
}

func decode(t *testing.T, tok string, v any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64URL(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// lastCode returns the code in the newest outbox message to addr.
func (f *fixture) lastCode(addr string) string {
	f.t.Helper()
	ms, err := f.App.Core.Store.ListMail(f.ctx, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].To == addr {
			if m := codeRE.FindStringSubmatch(ms[i].Body); m != nil {
				return m[1]
			}
		}
	}
	f.t.Fatalf("no code mailed to %s", addr)
	return ""
}

func TestSignUpConfirmAndSignIn(t *testing.T) {
	f := start(t, userWritable("custom:team"))
	in := &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"),
		Password: aws.String("Carol-Passw0rd"), UserAttributes: []types.AttributeType{
			{Name: aws.String("email"), Value: aws.String("carol@example.com")},
			{Name: aws.String("custom:team"), Value: aws.String("sales")}}}
	out, err := f.c.SignUp(f.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.UserConfirmed || aws.ToString(out.UserSub) == "" || out.CodeDeliveryDetails == nil ||
		aws.ToString(out.CodeDeliveryDetails.Destination) != "c***@e***" {
		t.Fatalf("SignUp output: %+v", out)
	}
	_, err = f.c.SignUp(f.ctx, in)
	wantCode(t, err, "UsernameExistsException")

	_, err = f.passwordAuth("carol", "Carol-Passw0rd")
	wantCode(t, err, "UserNotConfirmedException")

	first := f.lastCode("carol@example.com")
	if _, err := f.c.ResendConfirmationCode(f.ctx, &cip.ResendConfirmationCodeInput{ClientId: aws.String("demo-web"), Username: aws.String("carol")}); err != nil {
		t.Fatal(err)
	}
	code := f.lastCode("carol@example.com")
	if first != code {
		_, err = f.c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"), ConfirmationCode: aws.String(first)})
		wantCode(t, err, "CodeMismatchException")
	}
	_, err = f.c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"), ConfirmationCode: aws.String("000000")})
	if code != "000000" {
		wantCode(t, err, "CodeMismatchException")
	}
	if _, err := f.c.ConfirmSignUp(f.ctx, &cip.ConfirmSignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("carol"), ConfirmationCode: aws.String(code)}); err != nil {
		t.Fatal(err)
	}
	// mfa: optional, carol has none: tokens at once.
	res, err := f.passwordAuth("carol", "Carol-Passw0rd")
	if err != nil || res.AuthenticationResult == nil {
		t.Fatalf("sign-in after confirmation: %v %+v", err, res)
	}
	var id map[string]any
	decode(t, aws.ToString(res.AuthenticationResult.IdToken), &id)
	if id["sub"] != aws.ToString(out.UserSub) || id["email_verified"] != true || id["custom:team"] != "sales" {
		t.Errorf("claims after sign-up: %v", id)
	}

	// Weak password and missing fields change nothing.
	_, err = f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("dave"), Password: aws.String("short")})
	wantCode(t, err, "InvalidPasswordException")
	_, err = f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("dave"), Password: aws.String("alllowercase-no-digits")})
	wantCode(t, err, "InvalidPasswordException")
	if _, err := f.App.Core.Store.GetUser(f.ctx, poolID, "dave"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused sign-up left a user behind: %v", err)
	}
	_, err = f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("no-such-client"), Username: aws.String("dave"), Password: aws.String("Dave-Passw0rd1")})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestSelfSignupDisabled(t *testing.T) {
	f := start(t, func(c *config.Config) { no := false; c.UserPools[0].SelfSignup = &no })
	_, err := f.c.SignUp(f.ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String("eve"), Password: aws.String("Eve-Passw0rd12")})
	wantCode(t, err, "NotAuthorizedException")
}

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	f := start(t)
	_, err1 := f.passwordAuth("alice", "Wrong-Passw0rd")
	e1 := wantCode(t, err1, "NotAuthorizedException")
	_, err2 := f.passwordAuth("nobody", "Wrong-Passw0rd")
	e2 := wantCode(t, err2, "NotAuthorizedException")
	if e1.Message != e2.Message || e1.Message != "Incorrect username or password." {
		t.Errorf("messages differ: %q vs %q", e1.Message, e2.Message)
	}
}

func TestLockoutPerUserNotPerSource(t *testing.T) {
	f := start(t)
	for i := 0; i < 5; i++ {
		_, err := f.passwordAuth("bob", "Wrong-Passw0rd1")
		wantCode(t, err, "NotAuthorizedException")
	}
	// Even the right password is refused while locked.
	_, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	e := wantCode(t, err, "NotAuthorizedException")
	if e.Message != "Password attempts exceeded" {
		t.Errorf("locked-out message %q", e.Message)
	}
	// Other users from the same address are not locked out.
	if _, err := f.passwordAuth("alice", "Alice-Passw0rd"); err != nil {
		t.Fatalf("alice locked out by bob's failures: %v", err)
	}
	// After the window, bob may sign in again.
	f.Clock.Advance(16 * time.Minute)
	if res, err := f.passwordAuth("bob", "Bob-Passw0rd1"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("bob after the lockout window: %v", err)
	}
}

func TestDisabledUser(t *testing.T) {
	f := start(t)
	if _, err := f.App.Core.Store.UpdateUser(f.ctx, poolID, "bob", func(u *store.User) error { u.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	e := wantCode(t, err, "NotAuthorizedException")
	if e.Message != "User is disabled." {
		t.Errorf("message %q", e.Message)
	}
}

func TestMFAChallengeErrors(t *testing.T) {
	f := start(t)
	respond := func(session *string, code string) (*cip.RespondToAuthChallengeOutput, error) {
		return f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{
			ClientId: aws.String("demo-web"), ChallengeName: types.ChallengeNameTypeSoftwareTokenMfa, Session: session,
			ChallengeResponses: map[string]string{"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code}})
	}
	out, err := f.passwordAuth("alice", "Alice-Passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	good := f.totp(aliceSecret)
	wrong := "000000"
	if wrong == good {
		wrong = "111111"
	}
	_, err = respond(out.Session, wrong)
	wantCode(t, err, "CodeMismatchException")
	// The session survives a wrong code (a few tries), then works once.
	res, err := respond(out.Session, good)
	if err != nil || res.AuthenticationResult == nil {
		t.Fatalf("right code after a wrong one: %v", err)
	}
	// Reused session.
	_, err = respond(out.Session, good)
	wantCode(t, err, "NotAuthorizedException")

	// Reused TOTP code within its window, on a fresh session.
	out2, err := f.passwordAuth("alice", "Alice-Passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	_, err = respond(out2.Session, good)
	wantCode(t, err, "CodeMismatchException")

	// Expired session.
	f.Clock.Advance(30 * time.Second)
	out3, err := f.passwordAuth("alice", "Alice-Passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(4 * time.Minute)
	_, err = respond(out3.Session, f.totp(aliceSecret))
	wantCode(t, err, "NotAuthorizedException")

	// Garbage session.
	_, err = respond(aws.String("not-a-session"), f.totp(aliceSecret))
	wantCode(t, err, "NotAuthorizedException")
}

func TestEnrolTOTPWithAccessTokenAndPreference(t *testing.T) {
	f := start(t)
	res, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil || res.AuthenticationResult == nil {
		t.Fatalf("bob sign-in: %v", err)
	}
	at := res.AuthenticationResult.AccessToken
	_, err = f.c.SetUserMFAPreference(f.ctx, &cip.SetUserMFAPreferenceInput{AccessToken: at,
		SoftwareTokenMfaSettings: &types.SoftwareTokenMfaSettingsType{Enabled: true, PreferredMfa: true}})
	wantCode(t, err, "InvalidParameterException")

	assoc, err := f.c.AssociateSoftwareToken(f.ctx, &cip.AssociateSoftwareTokenInput{AccessToken: at})
	if err != nil {
		t.Fatal(err)
	}
	secret := aws.ToString(assoc.SecretCode)
	if len(secret) < 32 {
		t.Fatalf("secret %q", secret)
	}
	_, err = f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{AccessToken: at, UserCode: aws.String(wrongCode(f.totp(secret)))})
	wantCode(t, err, "EnableSoftwareTokenMFAException")
	v, err := f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{AccessToken: at, UserCode: aws.String(f.totp(secret))})
	if err != nil || v.Status != types.VerifySoftwareTokenResponseTypeSuccess {
		t.Fatalf("VerifySoftwareToken: %v", err)
	}
	// Verified but not yet enabled: sign-in still needs no code.
	if res, err := f.passwordAuth("bob", "Bob-Passw0rd1"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("before enabling: %v", err)
	}
	if _, err := f.c.SetUserMFAPreference(f.ctx, &cip.SetUserMFAPreferenceInput{AccessToken: at,
		SoftwareTokenMfaSettings: &types.SoftwareTokenMfaSettingsType{Enabled: true, PreferredMfa: true}}); err != nil {
		t.Fatal(err)
	}
	out, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		t.Fatalf("after enabling: %v %q", err, out.ChallengeName)
	}
	f.Clock.Advance(30 * time.Second)
	r, err := f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: out.ChallengeName, Session: out.Session,
		ChallengeResponses: map[string]string{"USERNAME": "bob", "SOFTWARE_TOKEN_MFA_CODE": f.totp(secret)}})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("bob TOTP: %v", err)
	}
}

func wrongCode(good string) string {
	if good == "123456" {
		return "654321"
	}
	return "123456"
}

func TestMFARequiredYieldsMFASetup(t *testing.T) {
	f := start(t, func(c *config.Config) { c.UserPools[0].MFA = "required" })
	out, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	if out.ChallengeName != types.ChallengeNameTypeMfaSetup || out.ChallengeParameters["MFAS_CAN_SETUP"] != `["SOFTWARE_TOKEN_MFA"]` {
		t.Fatalf("want MFA_SETUP, got %q %v", out.ChallengeName, out.ChallengeParameters)
	}
	// Responding to MFA_SETUP before verifying is refused.
	_, err = f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: types.ChallengeNameTypeMfaSetup, Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "bob"}})
	wantCode(t, err, "NotAuthorizedException")

	out, err = f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	vSession := f.enrolBySession(out.Session)
	r, err := f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: types.ChallengeNameTypeMfaSetup, Session: vSession, ChallengeResponses: map[string]string{"USERNAME": "bob"}})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("MFA_SETUP completion: %v", err)
	}
	// From now on bob gets the TOTP challenge.
	out, err = f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeSoftwareTokenMfa {
		t.Fatalf("after setup: %v %q", err, out.ChallengeName)
	}
	// The old sessions are spent.
	_, err = f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: types.ChallengeNameTypeMfaSetup, Session: vSession, ChallengeResponses: map[string]string{"USERNAME": "bob"}})
	wantCode(t, err, "NotAuthorizedException")
}

// During MFA_SETUP a wrong first code keeps the session for another try,
// as many times as a sign-in's MFA code (3), and no more: failing codes
// do not keep a session alive for ever.
func TestMFASetupWrongCodesSpendTheSession(t *testing.T) {
	f := start(t, func(c *config.Config) { c.UserPools[0].MFA = "required" })
	out, err := f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	assoc, err := f.c.AssociateSoftwareToken(f.ctx, &cip.AssociateSoftwareTokenInput{Session: out.Session})
	if err != nil {
		t.Fatal(err)
	}
	secret := aws.ToString(assoc.SecretCode)
	for range 3 {
		_, err := f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{Session: assoc.Session, UserCode: aws.String(wrongCode(f.totp(secret)))})
		wantCode(t, err, "EnableSoftwareTokenMFAException")
	}
	// The right code now finds the session spent.
	_, err = f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{Session: assoc.Session, UserCode: aws.String(f.totp(secret))})
	wantCode(t, err, "NotAuthorizedException")

	// Two wrong codes leave the third try to the right one.
	out, err = f.passwordAuth("bob", "Bob-Passw0rd1")
	if err != nil {
		t.Fatal(err)
	}
	assoc, err = f.c.AssociateSoftwareToken(f.ctx, &cip.AssociateSoftwareTokenInput{Session: out.Session})
	if err != nil {
		t.Fatal(err)
	}
	secret = aws.ToString(assoc.SecretCode)
	for range 2 {
		_, err := f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{Session: assoc.Session, UserCode: aws.String(wrongCode(f.totp(secret)))})
		wantCode(t, err, "EnableSoftwareTokenMFAException")
	}
	v, err := f.c.VerifySoftwareToken(f.ctx, &cip.VerifySoftwareTokenInput{Session: assoc.Session, UserCode: aws.String(f.totp(secret))})
	if err != nil || v.Status != types.VerifySoftwareTokenResponseTypeSuccess {
		t.Fatalf("third try with the right code: %v", err)
	}
}

func TestNewPasswordRequired(t *testing.T) {
	f := start(t)
	now := f.Clock.Now()
	err := f.App.Core.Store.CreateUser(f.ctx, store.User{PoolID: poolID, Username: "frank", Sub: "8d1c2a66-1111-4a8e-9a51-3f1f0c5d7b21",
		Email: "frank@example.com", Status: store.StatusForceChangePassword, Enabled: true,
		PasswordHash: userpool.HashPassword("Temp-Passw0rd", apptest.CheapArgon2), CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.passwordAuth("frank", "Temp-Passw0rd")
	if err != nil || out.ChallengeName != types.ChallengeNameTypeNewPasswordRequired {
		t.Fatalf("want NEW_PASSWORD_REQUIRED: %v %q", err, out.ChallengeName)
	}
	if !strings.Contains(out.ChallengeParameters["userAttributes"], "frank@example.com") {
		t.Errorf("userAttributes = %q", out.ChallengeParameters["userAttributes"])
	}
	_, err = f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: out.ChallengeName, Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "frank", "NEW_PASSWORD": "weak"}})
	wantCode(t, err, "InvalidPasswordException")
	r, err := f.c.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"),
		ChallengeName: out.ChallengeName, Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": "frank", "NEW_PASSWORD": "Frank-Passw0rd"}})
	if err != nil || r.AuthenticationResult == nil {
		t.Fatalf("new password: %v", err)
	}
	if res, err := f.passwordAuth("frank", "Frank-Passw0rd"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("sign-in with the new password: %v", err)
	}
}

func TestForgotPassword(t *testing.T) {
	f := start(t)
	out, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")})
	if err != nil || out.CodeDeliveryDetails == nil || aws.ToString(out.CodeDeliveryDetails.Destination) != "b***@e***" {
		t.Fatalf("ForgotPassword: %v %+v", err, out)
	}
	// An unknown user gets a look-alike answer.
	if _, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("nobody")}); err != nil {
		t.Fatalf("ForgotPassword for an unknown user: %v", err)
	}
	code := f.lastCode("bob@example.com")
	confirm := func(code, pw string) error {
		_, err := f.c.ConfirmForgotPassword(f.ctx, &cip.ConfirmForgotPasswordInput{ClientId: aws.String("demo-web"),
			Username: aws.String("bob"), ConfirmationCode: aws.String(code), Password: aws.String(pw)})
		return err
	}
	wantCode(t, confirm(wrongCode(code), "Bob-New-Passw0rd"), "CodeMismatchException")
	wantCode(t, confirm(code, "weak"), "InvalidPasswordException")
	if err := confirm(code, "Bob-New-Passw0rd"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, confirm(code, "Bob-Other-Passw0rd"), "CodeMismatchException") // used up: no code pending, as for an unknown user
	if res, err := f.passwordAuth("bob", "Bob-New-Passw0rd"); err != nil || res.AuthenticationResult == nil {
		t.Fatalf("sign-in after reset: %v", err)
	}
	// An expired code.
	if _, err := f.c.ForgotPassword(f.ctx, &cip.ForgotPasswordInput{ClientId: aws.String("demo-web"), Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	code = f.lastCode("bob@example.com")
	f.Clock.Advance(2 * time.Hour)
	wantCode(t, confirm(code, "Bob-Third-Passw0rd"), "ExpiredCodeException")
}

func (f *fixture) refresh(rt *string) (*cip.InitiateAuthOutput, error) {
	return f.c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeRefreshTokenAuth,
		ClientId: aws.String("demo-web"), AuthParameters: map[string]string{"REFRESH_TOKEN": aws.ToString(rt)}})
}

func TestRefreshRotationReuseAndGrace(t *testing.T) {
	f := start(t)
	ar := f.signInAlice()
	r1, err := f.refresh(ar.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	n1 := r1.AuthenticationResult
	if aws.ToString(n1.RefreshToken) == "" || aws.ToString(n1.RefreshToken) == aws.ToString(ar.RefreshToken) {
		t.Fatal("rotate_refresh: want a new refresh token")
	}
	var before, after map[string]any
	decode(t, aws.ToString(ar.IdToken), &before)
	decode(t, aws.ToString(n1.IdToken), &after)
	if before["origin_jti"] != after["origin_jti"] || before["auth_time"] != after["auth_time"] || before["jti"] == after["jti"] {
		t.Errorf("refresh must keep origin_jti and auth_time and change jti: %v / %v", before, after)
	}
	// A retry within the grace period (response lost) gets the same tokens.
	r1b, err := f.refresh(ar.RefreshToken)
	if err != nil {
		t.Fatalf("retry within grace: %v", err)
	}
	if aws.ToString(r1b.AuthenticationResult.RefreshToken) != aws.ToString(n1.RefreshToken) {
		t.Error("retry within grace returned different tokens")
	}
	// Once the successor is used, the old token is reuse: family revoked.
	r2, err := f.refresh(n1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.refresh(ar.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.refresh(r2.AuthenticationResult.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")

	// Past the grace period, reuse revokes too.
	ar = f.signInAlice()
	if _, err := f.refresh(ar.RefreshToken); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(time.Minute)
	_, err = f.refresh(ar.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")

	_, err = f.refresh(aws.String("forged"))
	wantCode(t, err, "NotAuthorizedException")
}

func TestRefreshWithoutRotation(t *testing.T) {
	f := start(t, func(c *config.Config) { c.UserPools[0].Tokens.RotateRefresh = false })
	ar := f.signInAlice()
	for i := 0; i < 2; i++ {
		r, err := f.refresh(ar.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if r.AuthenticationResult.RefreshToken != nil || aws.ToString(r.AuthenticationResult.AccessToken) == "" {
			t.Fatal("without rotation: new access token and no refresh token")
		}
	}
	f.Clock.Advance(721 * time.Hour)
	_, err := f.refresh(ar.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")
}

func TestGlobalSignOutAndRevokeToken(t *testing.T) {
	f := start(t)
	ar := f.signInAlice()
	other := f.signInAlice()
	if _, err := f.c.GlobalSignOut(f.ctx, &cip.GlobalSignOutInput{AccessToken: ar.AccessToken}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*types.AuthenticationResultType{ar, other} {
		_, err := f.refresh(a.RefreshToken)
		wantCode(t, err, "NotAuthorizedException")
	}
	_, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: ar.AccessToken})
	wantCode(t, err, "NotAuthorizedException")
	// Signing in again works, even in the same second.
	f.Clock.Advance(time.Second)
	fresh := f.signInAlice()
	if _, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: fresh.AccessToken}); err != nil {
		t.Fatalf("GetUser after a new sign-in: %v", err)
	}

	if _, err := f.c.RevokeToken(f.ctx, &cip.RevokeTokenInput{ClientId: aws.String("demo-web"), Token: fresh.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	_, err = f.refresh(fresh.RefreshToken)
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: fresh.AccessToken})
	wantCode(t, err, "NotAuthorizedException")
	_, err = f.c.RevokeToken(f.ctx, &cip.RevokeTokenInput{ClientId: aws.String("demo-web"), Token: fresh.AccessToken})
	wantCode(t, err, "UnsupportedTokenTypeException")

	// Refusals are the UnauthorizedException RevokeToken declares, which
	// the SDK types: another client's token (which stays valid), a wrong
	// client secret.
	kept := f.signInAlice()
	var ue *types.UnauthorizedException
	_, err = f.c.RevokeToken(f.ctx, &cip.RevokeTokenInput{ClientId: aws.String("orders-service"), ClientSecret: aws.String("orders-demo-secret"), Token: kept.RefreshToken})
	if !errors.As(err, &ue) {
		t.Fatalf("another client's token: %v, want UnauthorizedException", err)
	}
	_, err = f.c.RevokeToken(f.ctx, &cip.RevokeTokenInput{ClientId: aws.String("orders-service"), ClientSecret: aws.String("wrong-secret-wrong-secret"), Token: kept.RefreshToken})
	if !errors.As(err, &ue) {
		t.Fatalf("a wrong client secret: %v, want UnauthorizedException", err)
	}
	if _, err := f.refresh(kept.RefreshToken); err != nil {
		t.Fatalf("the refused revocations revoked: %v", err)
	}
}

func TestExpiredAccessToken(t *testing.T) {
	f := start(t)
	ar := f.signInAlice()
	f.Clock.Advance(2 * time.Hour)
	_, err := f.c.GetUser(f.ctx, &cip.GetUserInput{AccessToken: ar.AccessToken})
	e := wantCode(t, err, "NotAuthorizedException")
	if e.Message != "Access Token has expired" {
		t.Errorf("message %q", e.Message)
	}
}

func TestFlowNotAllowedAndUnknownClient(t *testing.T) {
	f := start(t)
	_, err := f.c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth,
		ClientId: aws.String("files-service"), AuthParameters: map[string]string{"USERNAME": "alice", "PASSWORD": "Alice-Passw0rd"}})
	wantCode(t, err, "InvalidParameterException")
	_, err = f.c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth,
		ClientId: aws.String("nope"), AuthParameters: map[string]string{"USERNAME": "alice", "PASSWORD": "Alice-Passw0rd"}})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = f.c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserSrpAuth,
		ClientId: aws.String("demo-web"), AuthParameters: map[string]string{"USERNAME": "alice", "SRP_A": "1"}})
	wantCode(t, err, "InvalidParameterException")
	_, err = f.c.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth,
		ClientId: aws.String("demo-web"), AuthParameters: map[string]string{"USERNAME": "alice"}})
	wantCode(t, err, "InvalidParameterException")
}

// raw posts a hand-made request, for input the SDK would never send.
func (f *fixture) raw(target string, body []byte) (int, map[string]any, http.Header) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.App.URL(app.IDP)+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

func TestMalformedRequests(t *testing.T) {
	f := start(t)
	cases := []struct {
		name, target string
		body         []byte
		status       int
		code         string
	}{
		{"malformed JSON", "AWSCognitoIdentityProviderService.InitiateAuth", []byte(`{"AuthFlow":`), 400, "SerializationException"},
		{"wrong type", "AWSCognitoIdentityProviderService.InitiateAuth", []byte(`{"AuthFlow":42}`), 400, "SerializationException"},
		{"unknown target", "AWSCognitoIdentityProviderService.DoEverything", []byte(`{}`), 400, "UnknownOperationException"},
		{"other service", "AWSCognitoIdentityService.GetId", []byte(`{}`), 400, "UnknownOperationException"},
		{"no target", "", []byte(`{}`), 400, "UnknownOperationException"},
		{"oversized body", "AWSCognitoIdentityProviderService.SignUp", append(append([]byte(`{"Username":"`), bytes.Repeat([]byte("a"), 300<<10)...), []byte(`"}`)...), 413, "RequestEntityTooLargeException"},
		{"missing fields", "AWSCognitoIdentityProviderService.SignUp", []byte(`{"ClientId":"demo-web"}`), 400, "InvalidParameterException"},
		{"missing client", "AWSCognitoIdentityProviderService.InitiateAuth", []byte(`{"AuthFlow":"USER_PASSWORD_AUTH"}`), 400, "InvalidParameterException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, h := f.raw(c.target, c.body)
			if status != c.status || body["__type"] != c.code || h.Get("X-Amzn-ErrorType") != c.code || h.Get("x-amzn-RequestId") == "" {
				t.Fatalf("got %d %v (X-Amzn-ErrorType %q)", status, body, h.Get("X-Amzn-ErrorType"))
			}
		})
	}
	if us, _ := f.App.Core.Store.ListUsers(f.ctx, poolID, "", 0); len(us) != 2 {
		t.Errorf("malformed requests changed the user table: %d users", len(us))
	}
}

func TestAuditEventsForAuthDecisions(t *testing.T) {
	f := start(t)
	f.signInAlice()
	f.passwordAuth("alice", "Wrong-Passw0rd")
	evs := f.AuditEvents(t, store.AuditFilter{Component: "idp"})
	var allow, deny int
	for _, e := range evs {
		if e.Username == "alice" && e.RequestID != "" && e.SourceIP == "127.0.0.1" && e.ClientID == "demo-web" {
			switch e.Outcome {
			case "allow":
				allow++
			case "deny":
				deny++
				if !strings.Contains(e.Reason, "wrong password") {
					t.Errorf("deny reason %q", e.Reason)
				}
			}
		}
	}
	if allow < 2 || deny != 1 {
		t.Fatalf("audit: %d allow, %d deny events for alice (of %d)", allow, deny, len(evs))
	}
	// No secrets in the logs.
	logs := f.Log.String()
	for _, s := range []string{"Alice-Passw0rd", "Wrong-Passw0rd", aliceSecret} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain secret %q", s)
		}
	}
}

// An ID token carries the at_hash of the access token issued with it, as
// Cognito's do, under each signing algorithm a pool may use: go-oidc
// checks it (VerifyAccessToken), and it does not fit another access token.
func TestIDTokenAccessTokenHash(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			f := start(t, func(c *config.Config) { c.UserPools[0].SigningAlg = alg })
			first, err := f.passwordAuth("bob", "Bob-Passw0rd1")
			if err != nil {
				t.Fatal(err)
			}
			second, err := f.passwordAuth("bob", "Bob-Passw0rd1")
			if err != nil {
				t.Fatal(err)
			}
			prov, err := oidc.NewProvider(f.ctx, f.issuer())
			if err != nil {
				t.Fatal(err)
			}
			idt, err := prov.Verifier(&oidc.Config{ClientID: "demo-web", SupportedSigningAlgs: []string{alg}}).Verify(f.ctx, aws.ToString(first.AuthenticationResult.IdToken))
			if err != nil {
				t.Fatal(err)
			}
			if err := idt.VerifyAccessToken(aws.ToString(first.AuthenticationResult.AccessToken)); err != nil {
				t.Errorf("at_hash of its access token: %v", err)
			}
			if err := idt.VerifyAccessToken(aws.ToString(second.AuthenticationResult.AccessToken)); err == nil {
				t.Error("at_hash fits another sign-in's access token")
			}
		})
	}
}

package identity_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/userpool"
)

const (
	poolID    = "us-east-1_WritDemo1"
	identPool = "us-east-1:2a7c5e0e-6f43-4a8e-9a51-3f1f0c5d7b21"
	aliceTOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	staffRole = "arn:aws:iam::000000000000:role/demo-staff"
	userRole  = "arn:aws:iam::000000000000:role/demo-user"
)

type fx struct {
	*apptest.Env
	t   testing.TB
	ctx context.Context
	idp *cip.Client
	ci  *ci.Client
	sts *sts.Client
}

func start(t testing.TB, opts ...apptest.Option) *fx {
	env := apptest.Start(t, opts...)
	o := func(u string) *string { return aws.String(u) }
	f := &fx{Env: env, t: t, ctx: context.Background()}
	f.idp = cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: o(env.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	f.ci = ci.New(ci.Options{Region: "us-east-1", BaseEndpoint: o(env.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	f.sts = sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: o(env.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	return f
}

// signIn returns a user's ID token (alice answers her TOTP challenge).
func (f *fx) signIn(user, pw string) string {
	f.t.Helper()
	out, err := f.idp.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": user, "PASSWORD": pw}})
	if err != nil {
		f.t.Fatal(err)
	}
	if out.AuthenticationResult != nil {
		return aws.ToString(out.AuthenticationResult.IdToken)
	}
	code, _ := userpool.TOTPNow(aliceTOTP, f.Clock.Now())
	r, err := f.idp.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
		Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": user, "SOFTWARE_TOKEN_MFA_CODE": code}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.Clock.Advance(30 * time.Second)
	return aws.ToString(r.AuthenticationResult.IdToken)
}

func (f *fx) loginKey() string {
	return strings.TrimPrefix(f.App.URL(app.IDP), "http://") + "/" + poolID
}

func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if code(err) != want {
		t.Fatalf("want %s, got %v", want, err)
	}
}

// code is the AWS error code of err ("" when none).
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestEnhancedFlowChoosesRoleFromToken(t *testing.T) {
	f := start(t)
	idTok := f.signIn("alice", "Alice-Passw0rd")
	logins := map[string]string{f.loginKey(): idTok}
	id1, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(id1.IdentityId), "us-east-1:") {
		t.Fatalf("identity id %q", aws.ToString(id1.IdentityId))
	}
	// Stable per (pool, provider, sub), also under the AWS-style provider name.
	id2, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool),
		Logins: map[string]string{"cognito-idp.us-east-1.amazonaws.com/" + poolID: f.signIn("alice", "Alice-Passw0rd")}})
	if err != nil || aws.ToString(id2.IdentityId) != aws.ToString(id1.IdentityId) {
		t.Fatalf("second GetId: %v %v", err, id2)
	}
	out, err := f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id1.IdentityId, Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || aws.ToString(c.SecretKey) == "" || aws.ToString(c.SessionToken) == "" ||
		c.Expiration == nil || c.Expiration.Before(time.Now()) {
		t.Fatalf("credentials: %+v", c)
	}
	sess, err := f.App.STS.Open(aws.ToString(c.AccessKeyId), aws.ToString(c.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	if sess.Role != "demo-staff" || sess.Secret != aws.ToString(c.SecretKey) || sess.IdentityID != aws.ToString(id1.IdentityId) ||
		sess.Tags["department"] != "engineering" {
		t.Fatalf("sealed session: %+v", sess)
	}
	// A corrupted token does not open.
	bad := []byte(aws.ToString(c.SessionToken))
	bad[10] ^= 1
	if _, err := f.App.STS.Open(aws.ToString(c.AccessKeyId), string(bad)); err == nil {
		t.Error("a corrupted session token opened")
	}
	// bob (customers) gets demo-user.
	bobTok := f.signIn("bob", "Bob-Passw0rd1")
	bobLogins := map[string]string{f.loginKey(): bobTok}
	bid, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: bobLogins})
	if err != nil {
		t.Fatal(err)
	}
	bout, err := f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: bid.IdentityId, Logins: bobLogins})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.App.STS.Open(aws.ToString(bout.Credentials.AccessKeyId), aws.ToString(bout.Credentials.SessionToken)); s.Role != "demo-user" {
		t.Fatalf("bob's role %q", s.Role)
	}
	// Alice's token does not unlock bob's identity.
	_, err = f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: bid.IdentityId, Logins: logins})
	wantCode(t, err, "NotAuthorizedException")
}

func TestIdentityRefusals(t *testing.T) {
	f := start(t)
	idTok := f.signIn("alice", "Alice-Passw0rd")
	_, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool)})
	wantCode(t, err, "NotAuthorizedException") // unauthenticated not allowed
	_, err = f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String("us-east-1:00000000-0000-0000-0000-000000000000"), Logins: map[string]string{f.loginKey(): idTok}})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: map[string]string{f.loginKey(): idTok[:len(idTok)-5] + "AAAAA"}})
	wantCode(t, err, "NotAuthorizedException") // forged
	_, err = f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: map[string]string{"accounts.example.com": idTok}})
	wantCode(t, err, "NotAuthorizedException") // not a provider of the pool
	_, err = f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: aws.String("us-east-1:00000000-0000-0000-0000-000000000000")})
	wantCode(t, err, "ResourceNotFoundException")
	// Ids not of the API's form are refused as the service does, before
	// any lookup.
	_, err = f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: aws.String("us-east-1:nope")})
	wantCode(t, err, "InvalidParameterException")
	_, err = f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String("not a pool id!!"), Logins: map[string]string{f.loginKey(): idTok}})
	wantCode(t, err, "InvalidParameterException")
	// The basic (classic) flow is off unless the pool allows it: bob's
	// token would otherwise buy any role whose trust policy checks only
	// the pool (demo-staff's), whatever the pool's role mapping says.
	id, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: map[string]string{f.loginKey(): idTok}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ci.GetOpenIdToken(f.ctx, &ci.GetOpenIdTokenInput{IdentityId: id.IdentityId, Logins: map[string]string{f.loginKey(): idTok}})
	wantCode(t, err, "InvalidParameterException")
	f.Clock.Advance(2 * time.Hour)
	_, err = f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: map[string]string{f.loginKey(): idTok}})
	wantCode(t, err, "NotAuthorizedException") // expired
}

func TestClientNotInProviderClientIDs(t *testing.T) {
	f := start(t, func(c *config.Config) { c.IdentityPools[0].Providers[0].ClientIDs = []string{"files-service"} })
	_, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: map[string]string{f.loginKey(): f.signIn("alice", "Alice-Passw0rd")}})
	wantCode(t, err, "NotAuthorizedException")
}

func TestBasicFlowAndSTS(t *testing.T) {
	f := start(t, apptest.ClassicFlow)
	idTok := f.signIn("bob", "Bob-Passw0rd1")
	logins := map[string]string{f.loginKey(): idTok}
	id, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	oid, err := f.ci.GetOpenIdToken(f.ctx, &ci.GetOpenIdTokenInput{IdentityId: id.IdentityId, Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("bob-session"), WebIdentityToken: oid.Token, DurationSeconds: aws.Int32(1800)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::000000000000:assumed-role/demo-user/bob-session" ||
		aws.ToString(out.SubjectFromWebIdentityToken) != aws.ToString(id.IdentityId) || aws.ToString(out.Provider) != "cognito-identity.amazonaws.com" ||
		aws.ToString(out.Audience) != identPool || !strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") ||
		out.Credentials.Expiration.Sub(time.Now()) > 31*time.Minute {
		t.Fatalf("AssumeRoleWithWebIdentity: %+v %+v", out, out.Credentials)
	}
	// Refusals.
	_, err = f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("s" + "x"), WebIdentityToken: oid.Token, DurationSeconds: aws.Int32(7200)})
	wantCode(t, err, "ValidationError") // beyond max_session 1h
	_, err = f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/nope"),
		RoleSessionName: aws.String("sx"), WebIdentityToken: oid.Token})
	wantCode(t, err, "AccessDenied")
	_, err = f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("sx"), WebIdentityToken: aws.String(aws.ToString(oid.Token) + "x")})
	wantCode(t, err, "InvalidIdentityToken")
	_, err = f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("sx"), WebIdentityToken: oid.Token, Policy: aws.String(`{"Statement":"nope"}`)})
	wantCode(t, err, "MalformedPolicyDocument")
	// A user-pool ID token straight from the OIDC provider: demo-user trusts aud demo-web.
	if _, err := f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("direct"), WebIdentityToken: aws.String(idTok)}); err != nil {
		t.Fatalf("OIDC provider token: %v", err)
	}
	// demo-staff trusts only the identity pool's tokens.
	_, err = f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(staffRole),
		RoleSessionName: aws.String("direct"), WebIdentityToken: aws.String(idTok)})
	wantCode(t, err, "AccessDenied")
	// An expired token is the SDK's typed ExpiredTokenException, which
	// stscreds does not retry.
	f.Clock.Advance(2 * time.Hour)
	_, err = f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("late"), WebIdentityToken: aws.String(idTok)})
	var expired *ststypes.ExpiredTokenException
	if !errors.As(err, &expired) {
		t.Fatalf("expired token: %v, want ExpiredTokenException", err)
	}
}

// TestWebIdentityRoleProvider uses the SDK's stscreds provider reading a
// token file, as AWS_WEB_IDENTITY_TOKEN_FILE setups do.
func TestWebIdentityRoleProvider(t *testing.T) {
	f := start(t)
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte(f.signIn("bob", "Bob-Passw0rd1")), 0o600)
	p := stscreds.NewWebIdentityRoleProvider(f.sts, userRole, stscreds.IdentityTokenFile(file), func(o *stscreds.WebIdentityRoleOptions) {
		o.RoleSessionName = "from-file"
	})
	creds, err := aws.NewCredentialsCache(p).Retrieve(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || !creds.CanExpire {
		t.Fatalf("credentials: %+v", creds)
	}
	sess, err := f.App.STS.Open(creds.AccessKeyID, creds.SessionToken)
	if err != nil || sess.Role != "demo-user" || sess.SessionName != "from-file" {
		t.Fatalf("session %+v %v", sess, err)
	}
}

package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	ststore "github.com/writ-id/writ/internal/sts"
)

func (f *fx) stsWith(ak, secret, token string) *sts.Client {
	return sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Identity)), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(ak, secret, token)})
}

func TestSignedSTS(t *testing.T) {
	opsTrust := config.NewPolicyDoc([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":"sts:AssumeRole"}]}`))
	opsPolicy := config.NewPolicyDoc([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`))
	f := start(t, func(c *config.Config) {
		c.IAM.Roles = append(c.IAM.Roles, config.Role{Name: "ops", MaxSession: time.Hour, Trust: opsTrust, Policy: opsPolicy})
	})
	admin := f.stsWith("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	who, err := admin.GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(who.Arn) != "arn:aws:iam::000000000000:user/admin" || aws.ToString(who.Account) != "000000000000" {
		t.Fatalf("GetCallerIdentity: %s %s", aws.ToString(who.Arn), aws.ToString(who.Account))
	}
	ar, err := admin.AssumeRole(f.ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/ops"), RoleSessionName: aws.String("maint")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(ar.AssumedRoleUser.Arn) != "arn:aws:sts::000000000000:assumed-role/ops/maint" {
		t.Fatalf("AssumeRole: %s", aws.ToString(ar.AssumedRoleUser.Arn))
	}
	// The temporary credentials sign requests of their own.
	tmp := f.stsWith(aws.ToString(ar.Credentials.AccessKeyId), aws.ToString(ar.Credentials.SecretAccessKey), aws.ToString(ar.Credentials.SessionToken))
	who, err = tmp.GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Arn) != "arn:aws:sts::000000000000:assumed-role/ops/maint" {
		t.Fatalf("caller with temporary credentials: %v %v", err, who)
	}
	// The role's trust policy admits only the admin user: demo-user is refused.
	_, err = admin.AssumeRole(f.ctx, &sts.AssumeRoleInput{RoleArn: aws.String(userRole), RoleSessionName: aws.String("x1")})
	wantCode(t, err, "AccessDenied")
	// The ops role's own policy has no sts:AssumeRole: no role chaining.
	_, err = tmp.AssumeRole(f.ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/ops"), RoleSessionName: aws.String("x2")})
	wantCode(t, err, "AccessDenied")

	// Credentials from the identity pool work too.
	tok := f.signIn("alice", "Alice-Passw0rd")
	logins := map[string]string{f.loginKey(): tok}
	id, err := f.ci.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := f.ci.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id.IdentityId, Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	alice := f.stsWith(aws.ToString(cr.Credentials.AccessKeyId), aws.ToString(cr.Credentials.SecretKey), aws.ToString(cr.Credentials.SessionToken))
	if who, err := alice.GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{}); err != nil ||
		aws.ToString(who.Arn) != "arn:aws:sts::000000000000:assumed-role/demo-staff/CognitoIdentityCredentials" {
		t.Fatalf("identity-pool credentials: %v %v", err, who)
	}

	// Refusals, each with STS's code.
	_, err = f.stsWith("AKIAWRITDEMOADMIN001", "wrong-secret", "").GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "SignatureDoesNotMatch")
	_, err = f.stsWith("AKIAUNKNOWNKEY000000", "x", "").GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "InvalidClientTokenId")
	_, err = f.stsWith(aws.ToString(ar.Credentials.AccessKeyId), aws.ToString(ar.Credentials.SecretAccessKey), "forged-token").GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "InvalidClientTokenId")
	_, err = f.sts.GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{}) // anonymous
	wantCode(t, err, "MissingAuthenticationToken")
	// Two hours on, the one-hour credentials are refused (writ's clock has
	// moved but the SDK signs with the real one, so the refusal may name
	// the skew rather than the expiry; either way nothing is accepted).
	f.Clock.Advance(2 * time.Hour)
	if _, err = tmp.GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{}); err == nil {
		t.Fatal("expired temporary credentials accepted")
	}
	if _, err := f.App.STS.Open(aws.ToString(ar.Credentials.AccessKeyId), aws.ToString(ar.Credentials.SessionToken)); err == nil {
		t.Fatal("expired session opened")
	}
}

// TestAssumeRoleTrustContext: what a trust policy can ask of an AssumeRole
// caller, as IAM does: an ExternalId (sts:ExternalId), the role (its ARN
// names every session of it: role chaining) or the account (root), and
// session tags (sts:TagSession), which become aws:PrincipalTag/* of the
// session and, when transitive, of the sessions it assumes in turn.
func TestAssumeRoleTrustContext(t *testing.T) {
	doc := func(s string) config.PolicyDoc { return config.NewPolicyDoc([]byte(s)) }
	all := doc(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession","s3:*"],"Resource":"*"}]}`)
	f := start(t, func(c *config.Config) {
		c.IAM.Roles = append(c.IAM.Roles,
			config.Role{Name: "vendor", MaxSession: time.Hour, Policy: all, Trust: doc(`{"Version":"2012-10-17","Statement":[
				{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":"sts:AssumeRole",
				 "Condition":{"StringEquals":{"sts:ExternalId":"ext-123"}}}]}`)},
			config.Role{Name: "hop", MaxSession: time.Hour, Policy: all, Trust: doc(`{"Version":"2012-10-17","Statement":[
				{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/admin","arn:aws:iam::000000000000:role/hop"]},
				 "Action":["sts:AssumeRole","sts:TagSession"]}]}`)},
			config.Role{Name: "account-wide", MaxSession: time.Hour, Policy: all, Trust: doc(`{"Version":"2012-10-17","Statement":[
				{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}`)})
	})
	admin := f.stsWith("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	assume := func(c *sts.Client, in *sts.AssumeRoleInput) (*sts.Client, error) {
		t.Helper()
		out, err := c.AssumeRole(f.ctx, in)
		if err != nil {
			return nil, err
		}
		return f.stsWith(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)), nil
	}
	role := func(name string) *string { return aws.String("arn:aws:iam::000000000000:role/" + name) }

	// ExternalId.
	for ext, want := range map[string]string{"ext-123": "", "ext-999": "AccessDenied", "": "AccessDenied"} {
		in := &sts.AssumeRoleInput{RoleArn: role("vendor"), RoleSessionName: aws.String("vendor-s")}
		if ext != "" {
			in.ExternalId = aws.String(ext)
		}
		if _, err := assume(admin, in); want == "" && err != nil || want != "" && code(err) != want {
			t.Errorf("ExternalId %q: %v", ext, err)
		}
	}
	// The account's root names every principal of the account.
	if _, err := assume(admin, &sts.AssumeRoleInput{RoleArn: role("account-wide"), RoleSessionName: aws.String("acct")}); err != nil {
		t.Errorf("trust in the account: %v", err)
	}
	// Session tags, one transitive; the chained session inherits it.
	first, err := assume(admin, &sts.AssumeRoleInput{RoleArn: role("hop"), RoleSessionName: aws.String("first"),
		Tags:              []ststypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}, {Key: aws.String("cost"), Value: aws.String("42")}},
		TransitiveTagKeys: []string{"team"}})
	if err != nil {
		t.Fatalf("AssumeRole with tags: %v", err)
	}
	sess, err := f.App.STS.Open(credsOf(t, first))
	if err != nil || sess.Tags["team"] != "blue" || sess.Tags["cost"] != "42" {
		t.Fatalf("first session's tags: %v %v", sess.Tags, err)
	}
	// A trust policy naming the role admits its sessions (role chaining).
	second, err := assume(first, &sts.AssumeRoleInput{RoleArn: role("hop"), RoleSessionName: aws.String("second")})
	if err != nil {
		t.Fatalf("chaining through a trust policy that names the role: %v", err)
	}
	if sess, err := f.App.STS.Open(credsOf(t, second)); err != nil || sess.Tags["team"] != "blue" || sess.Tags["cost"] != "" {
		t.Fatalf("chained session's tags: %v %v (want only the transitive team)", sess.Tags, err)
	}
	// The chained session cannot change an inherited transitive tag.
	_, err = assume(second, &sts.AssumeRoleInput{RoleArn: role("hop"), RoleSessionName: aws.String("third"),
		Tags: []ststypes.Tag{{Key: aws.String("Team"), Value: aws.String("red")}}})
	if code(err) != "InvalidParameterValue" {
		t.Errorf("replacing a transitive tag: %v", err)
	}
	// Tags need sts:TagSession in the trust policy: vendor's has none.
	_, err = assume(admin, &sts.AssumeRoleInput{RoleArn: role("vendor"), RoleSessionName: aws.String("vendor-s"), ExternalId: aws.String("ext-123"),
		Tags: []ststypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}}})
	if code(err) != "AccessDenied" {
		t.Errorf("tags without sts:TagSession in the trust policy: %v", err)
	}
	// Tag values are letters, digits, spaces and _.:/=+-@: a '*' would read
	// as a wildcard where a policy names the tag.
	for _, v := range []string{"*", "r?d"} {
		_, err = assume(admin, &sts.AssumeRoleInput{RoleArn: role("hop"), RoleSessionName: aws.String("wild"),
			Tags: []ststypes.Tag{{Key: aws.String("team"), Value: aws.String(v)}}})
		if code(err) != "ValidationError" {
			t.Errorf("tag value %q: %v", v, err)
		}
	}
	// A session policy is at most 2048 characters.
	long := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + strings.Repeat("b", 2100) + `"}]}`
	if _, err := assume(admin, &sts.AssumeRoleInput{RoleArn: role("hop"), RoleSessionName: aws.String("pol"), Policy: aws.String(long)}); code(err) != "ValidationError" {
		t.Errorf("a 2,200-character session policy: %v", err)
	}
}

// credsOf returns the access key id and session token a client signs with.
func credsOf(t *testing.T, c *sts.Client) (string, string) {
	t.Helper()
	cr, err := c.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cr.AccessKeyID, cr.SessionToken
}

// Parameters writ does not implement, each of which a caller sends to get
// less than the role allows (PolicyArns: managed session policies) or to
// be held to more (SourceIdentity, ProvidedContexts), are refused with a
// ValidationError rather than dropped: credentials asked to be read-only
// are never issued with the role's whole policy.
func TestAssumeRoleRefusesWhatItDoesNotImplement(t *testing.T) {
	opsTrust := config.NewPolicyDoc([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":["sts:AssumeRole","sts:SetSourceIdentity"]}]}`))
	opsPolicy := config.NewPolicyDoc([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`))
	f := start(t, func(c *config.Config) {
		c.IAM.Roles = append(c.IAM.Roles, config.Role{Name: "ops", MaxSession: time.Hour, Trust: opsTrust, Policy: opsPolicy})
	})
	admin := f.stsWith("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	role := aws.String("arn:aws:iam::000000000000:role/ops")
	for name, in := range map[string]*sts.AssumeRoleInput{
		"PolicyArns": {RoleArn: role, RoleSessionName: aws.String("ro"),
			PolicyArns: []ststypes.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")}}},
		"SourceIdentity": {RoleArn: role, RoleSessionName: aws.String("si"), SourceIdentity: aws.String("approved-by-admin")},
		"ProvidedContexts": {RoleArn: role, RoleSessionName: aws.String("pc"),
			ProvidedContexts: []ststypes.ProvidedContext{{ProviderArn: aws.String("arn:aws:iam::aws:contextProvider/IdentityCenter"), ContextAssertion: aws.String("x")}}},
	} {
		_, err := admin.AssumeRole(f.ctx, in)
		wantCode(t, err, "ValidationError")
		if !strings.Contains(err.Error(), name+" is not supported") {
			t.Errorf("%s: %v", name, err)
		}
	}
	tok := f.signIn("alice", "Alice-Passw0rd")
	_, err := f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("web"), WebIdentityToken: aws.String(tok),
		PolicyArns: []ststypes.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")}}})
	wantCode(t, err, "ValidationError")
}

// A long-term access key sent with a session token is refused, not taken
// as the IAM user with the token ignored, on STS as on S3.
func TestLongTermKeyWithATokenRefused(t *testing.T) {
	f := start(t)
	_, err := f.stsWith("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "some-session-token").GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "InvalidClientTokenId")
	if _, err := f.stsWith("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "").GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("without the token: %v", err)
	}
}

// Expired signing credentials are STS's ExpiredToken with status 403,
// AWS's common error.
func TestExpiredCredentialsOnSTS(t *testing.T) {
	f := start(t)
	creds, err := f.App.STS.Issue(ststore.Session{Role: "demo-user", SessionName: "old", Subject: "x", Provider: "sts",
		Expires: f.Clock.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.stsWith(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken).GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "ExpiredToken")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
		t.Errorf("status: %v, want 403", err)
	}
}

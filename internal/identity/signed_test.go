package identity_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
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

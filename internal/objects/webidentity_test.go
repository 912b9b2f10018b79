package objects_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
)

// assumeRole trades bob's identity-pool OpenID token for demo-user
// credentials with STS AssumeRoleWithWebIdentity (session name and
// optional session policy), as the "basic" Cognito flow does.
func (f *fx) assumeRole(logins map[string]string, identityID, session, policy string) (identity, string) {
	f.t.Helper()
	c := ci.New(ci.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}})
	oid, err := c.GetOpenIdToken(f.ctx, &ci.GetOpenIdTokenInput{IdentityId: aws.String(identityID), Logins: logins})
	if err != nil {
		f.t.Fatal(err)
	}
	st := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	in := &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRoleARN), RoleSessionName: aws.String(session), WebIdentityToken: oid.Token}
	if policy != "" {
		in.Policy = aws.String(policy)
	}
	out, err := st.AssumeRoleWithWebIdentity(f.ctx, in)
	if err != nil {
		f.t.Fatal(err)
	}
	cr := out.Credentials
	return identity{id: identityID, ak: aws.ToString(cr.AccessKeyId), secret: aws.ToString(cr.SecretAccessKey), token: aws.ToString(cr.SessionToken)},
		aws.ToString(out.AssumedRoleUser.Arn)
}

// TestS3WithAssumeRoleWithWebIdentity: credentials from STS
// AssumeRoleWithWebIdentity work with the SDK's s3 client under the role's
// policy and its variables (the identity's own prefix, not another's); a
// bucket policy naming the assumed-role session ARN grants that session
// only, one naming the role grants every session of it, limited by a
// session policy where the session-ARN grant is not (as in AWS).
func TestS3WithAssumeRoleWithWebIdentity(t *testing.T) {
	const laptop = "arn:aws:sts::000000000000:assumed-role/demo-user/bob-laptop"
	f := &fx{Env: apptest.Start(t, withBucketPolicy(`{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Principal": {"AWS": "`+laptop+`"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/laptop/*"},
		{"Effect": "Allow", "Principal": {"AWS": "`+userRoleARN+`"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/team/*"}]}`), apptest.ClassicFlow),
		t: t, ctx: context.Background()}
	admin := f.client("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "", true)
	for _, k := range []string{"laptop/a.txt", "team/b.txt"} {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	logins := f.logins("bob", "Bob-Passw0rd1")
	c := ci.New(ci.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}})
	id, err := c.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		t.Fatal(err)
	}
	bob, arn := f.assumeRole(logins, aws.ToString(id.IdentityId), "bob-laptop", "")
	if arn != laptop || !strings.HasPrefix(bob.ak, "ASIA") {
		t.Fatalf("assumed %s with %s", arn, bob.ak)
	}
	get := func(c *s3.Client, key string) error {
		out, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil {
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(b) != key && !strings.HasPrefix(key, "private/") {
				t.Errorf("%s: read %q", key, b)
			}
		}
		return err
	}
	for _, pathStyle := range []bool{true, false} {
		s := f.client(bob.ak, bob.secret, bob.token, pathStyle)
		own := "private/" + bob.id + "/from-sts.txt"
		if _, err := s.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(own), Body: strings.NewReader("via STS")}); err != nil {
			t.Fatalf("put in own prefix with STS credentials: %v", err)
		}
		if err := get(s, own); err != nil {
			t.Fatalf("get own object: %v", err)
		}
		l, err := s.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("private/" + bob.id + "/")})
		if err != nil || len(l.Contents) != 1 {
			t.Fatalf("list own prefix: %v %+v", err, l)
		}
		if _, err := s.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("private/someone-else/x"), Body: strings.NewReader("x")}); code(err) != "AccessDenied" {
			t.Errorf("put in another prefix: %v", err)
		}
		if err := get(s, "laptop/a.txt"); err != nil {
			t.Errorf("the grant to this session's ARN: %v", err)
		}
		if err := get(s, "team/b.txt"); err != nil {
			t.Errorf("the grant to the role: %v", err)
		}
	}
	// Another session of the same role: the role's grant, not the laptop's.
	phone, _ := f.assumeRole(logins, bob.id, "bob-phone", "")
	p := f.client(phone.ak, phone.secret, phone.token, true)
	if err := get(p, "laptop/a.txt"); code(err) != "AccessDenied" {
		t.Errorf("bob-phone uses the grant to bob-laptop: %v", err)
	}
	if err := get(p, "team/b.txt"); err != nil {
		t.Errorf("bob-phone, grant to the role: %v", err)
	}
	// A session policy (PutObject only) limits the role's grant, not the session's.
	narrow := `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]}`
	limited, _ := f.assumeRole(logins, bob.id, "bob-laptop", narrow)
	l := f.client(limited.ak, limited.secret, limited.token, true)
	if err := get(l, "team/b.txt"); code(err) != "AccessDenied" {
		t.Errorf("the session policy does not limit the role's grant: %v", err)
	}
	if err := get(l, "laptop/a.txt"); err != nil {
		t.Errorf("the grant to the session ARN is limited by the session policy: %v", err)
	}
	if err := get(l, "private/"+bob.id+"/from-sts.txt"); code(err) != "AccessDenied" {
		t.Errorf("the session policy does not limit the role's own policy: %v", err)
	}
}

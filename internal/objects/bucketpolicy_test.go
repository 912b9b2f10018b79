package objects_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
)

const (
	userRoleARN  = "arn:aws:iam::000000000000:role/demo-user"
	staffRoleARN = "arn:aws:iam::000000000000:role/demo-staff"
	adminARN     = "arn:aws:iam::000000000000:user/admin"
)

// withBucketPolicy sets the writ-demo bucket's policy.
func withBucketPolicy(doc string) apptest.Option {
	return func(c *config.Config) {
		c.Objects.BucketPolicies = map[string]config.PolicyDoc{bucket: config.NewPolicyDoc([]byte(doc))}
	}
}

// TestBucketPolicy: a bucket policy's Deny refuses what a role's policy
// allows, its Allow grants a role (or anyone, with "*") what the role's
// policy lacks, a Principal naming someone else changes nothing, the
// account as Principal denies everyone but allows no one, and an IAM
// user is matched by its user ARN. Identity-pool credentials, the SDK.
func TestBucketPolicy(t *testing.T) {
	f := &fx{Env: apptest.Start(t, withBucketPolicy(`{"Version": "2012-10-17", "Statement": [
		{"Sid": "NoDeletesByUsers", "Effect": "Deny", "Principal": {"AWS": "`+userRoleARN+`"},
		 "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::writ-demo/private/*"},
		{"Sid": "SharedForUsers", "Effect": "Allow", "Principal": {"AWS": ["`+userRoleARN+`"]},
		 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/shared/*"},
		{"Sid": "NoticesForAll", "Effect": "Allow", "Principal": "*",
		 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/notices/*"},
		{"Sid": "OnlyStaffReports", "Effect": "Allow", "Principal": {"AWS": "`+staffRoleARN+`"},
		 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/reports/*"},
		{"Sid": "AccountDelegates", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
		 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/delegated/*"},
		{"Sid": "FrozenForAll", "Effect": "Deny", "Principal": {"AWS": "000000000000"},
		 "Action": "s3:PutObject", "Resource": "arn:aws:s3:::writ-demo/frozen/*"},
		{"Sid": "AdminNoAudit", "Effect": "Deny", "Principal": {"AWS": "`+adminARN+`"},
		 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/audit/*"}]}`)), t: t, ctx: context.Background()}
	bob := f.credsFor("bob", "Bob-Passw0rd1") // demo-user
	b := f.client(bob.ak, bob.secret, bob.token, true)
	admin := f.client("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "", true)
	put := func(c *s3.Client, key string) error {
		_, err := c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(key)})
		return err
	}
	get := func(c *s3.Client, key string) error {
		out, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil {
			body, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(body) != key {
				t.Errorf("%s: read %q", key, body)
			}
		}
		return err
	}
	for _, k := range []string{"shared/guide.txt", "notices/today.txt", "reports/q1.txt", "delegated/x.txt", "audit/log.txt"} {
		if err := put(admin, k); err != nil {
			t.Fatalf("admin puts %s: %v", k, err)
		}
	}
	own := "private/" + bob.id + "/notes.txt"
	if err := put(b, own); err != nil {
		t.Fatalf("bob puts in his prefix: %v", err)
	}
	// Deny in the bucket policy beats the role's Allow.
	if _, err := b.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(own)}); code(err) != "AccessDenied" {
		t.Errorf("bob deletes his object despite the bucket policy's Deny: %v", err)
	}
	if err := get(b, own); err != nil {
		t.Errorf("bob still reads his object: %v", err)
	}
	// ... and names only the role: the admin user may delete.
	if _, err := admin.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(own)}); err != nil {
		t.Errorf("admin deletes: %v", err)
	}
	// Allow to the role grants what demo-user's own policy lacks.
	if err := get(b, "shared/guide.txt"); err != nil {
		t.Errorf("bob reads shared/ through the bucket policy: %v", err)
	}
	if err := put(b, "shared/other.txt"); code(err) != "AccessDenied" {
		t.Errorf("the grant is GetObject only, yet bob puts: %v", err)
	}
	if err := get(b, "notices/today.txt"); err != nil {
		t.Errorf(`bob reads notices/ (Principal "*"): %v`, err)
	}
	// Principal mismatch: the grant to demo-staff gives bob nothing.
	if err := get(b, "reports/q1.txt"); code(err) != "AccessDenied" {
		t.Errorf("bob reads a grant made to demo-staff: %v", err)
	}
	// The account as Principal: an Allow only delegates, a Deny hits everyone.
	if err := get(b, "delegated/x.txt"); code(err) != "AccessDenied" {
		t.Errorf("an Allow to the account root granted bob: %v", err)
	}
	if err := put(admin, "frozen/x.txt"); code(err) != "AccessDenied" {
		t.Errorf("admin (Action *) puts under a Deny to the account: %v", err)
	}
	// An IAM user is matched by its ARN.
	if err := get(admin, "audit/log.txt"); code(err) != "AccessDenied" {
		t.Errorf("admin reads despite a Deny naming arn:...:user/admin: %v", err)
	}
	if err := get(admin, "reports/q1.txt"); err != nil {
		t.Errorf("admin reads elsewhere: %v", err)
	}
	// alice (demo-staff) gets the grant made to her role.
	alice := f.credsFor("alice", "Alice-Passw0rd")
	if err := get(f.client(alice.ak, alice.secret, alice.token, false), "reports/q1.txt"); err != nil {
		t.Errorf("alice reads the grant to demo-staff: %v", err)
	}
}

// TestAnonymousThroughPublicBucketPolicy: an unsigned request (the SDK
// with anonymous credentials) gets what a bucket policy grants Principal
// "*", and nothing else — neither what only the account or a role is
// granted, nor any write — while the same request to a bucket without a
// policy is refused.
func TestAnonymousThroughPublicBucketPolicy(t *testing.T) {
	f := &fx{Env: apptest.Start(t, withBucketPolicy(`{"Version": "2012-10-17", "Statement": [
		{"Sid": "PublicNotices", "Effect": "Allow", "Principal": "*",
		 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/notices/*"},
		{"Sid": "AccountDelegates", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
		 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/delegated/*"},
		{"Sid": "UsersShared", "Effect": "Allow", "Principal": {"AWS": "`+userRoleARN+`"},
		 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/shared/*"}]}`)), t: t, ctx: context.Background()}
	admin := f.client("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "", true)
	for _, k := range []string{"notices/open.txt", "delegated/x", "shared/x"} {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	anon := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Objects)), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	out, err := anon.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("notices/open.txt")})
	if err != nil {
		t.Fatalf("anonymous read of a public object: %v", err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "notices/open.txt" {
		t.Fatalf("read %q", body)
	}
	for _, k := range []string{"delegated/x", "shared/x", "notices/missing.txt"} {
		if _, err := anon.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); code(err) != "AccessDenied" {
			t.Errorf("anonymous read of %s: %v", k, err)
		}
	}
	if _, err := anon.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("notices/new.txt"), Body: strings.NewReader("x")}); code(err) != "AccessDenied" {
		t.Errorf("anonymous write: %v", err)
	}
	if _, err := anon.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}); code(err) != "AccessDenied" {
		t.Errorf("anonymous listing: %v", err)
	}
	if _, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("notices/new.txt")}); err == nil {
		t.Error("the refused anonymous write left an object")
	}
	// Without a bucket policy, nothing is public.
	g := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	anon2 := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(g.App.URL(app.Objects)), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	if _, err := anon2.GetObject(g.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("notices/open.txt")}); code(err) != "AccessDenied" {
		t.Errorf("anonymous read without a bucket policy: %v", err)
	}
}

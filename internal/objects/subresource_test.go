package objects_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
)

// httpStatus is the HTTP status of an SDK call's error (200 without one).
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	if err != nil {
		return -1
	}
	return 200
}

// TestUnimplementedSubresources: an operation on a sub-resource the store
// does not implement is a 501 NotImplemented that changes nothing, never the
// base operation of the same method (which would overwrite, empty or delete
// the object or bucket).
func TestUnimplementedSubresources(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	for _, pathStyle := range []bool{true, false} {
		admin := f.client(adminAK, adminSecret, "", pathStyle)
		const key, body = "tagged.txt", "the object's own bytes"
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
		empty := "empty-bucket"
		if pathStyle {
			empty += "-path"
		}
		if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String(empty)}); err != nil {
			t.Fatal(err)
		}
		calls := map[string]func() error{
			"PutObjectTagging": func() error {
				_, err := admin.PutObjectTagging(f.ctx, &s3.PutObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key),
					Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}})
				return err
			},
			"PutObjectAcl": func() error {
				_, err := admin.PutObjectAcl(f.ctx, &s3.PutObjectAclInput{Bucket: aws.String(bucket), Key: aws.String(key), ACL: s3types.ObjectCannedACLPrivate})
				return err
			},
			"DeleteObjectTagging": func() error {
				_, err := admin.DeleteObjectTagging(f.ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				return err
			},
			"GetObjectTagging": func() error {
				_, err := admin.GetObjectTagging(f.ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				return err
			},
			"GetObjectAcl": func() error {
				_, err := admin.GetObjectAcl(f.ctx, &s3.GetObjectAclInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				return err
			},
			"DeleteBucketPolicy": func() error {
				_, err := admin.DeleteBucketPolicy(f.ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String(empty)})
				return err
			},
			"PutBucketVersioning": func() error {
				_, err := admin.PutBucketVersioning(f.ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("not-created-by-versioning"),
					VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
				return err
			},
			"GetBucketVersioning": func() error {
				_, err := admin.GetBucketVersioning(f.ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
				return err
			},
			"ListObjectVersions": func() error {
				_, err := admin.ListObjectVersions(f.ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
				return err
			},
		}
		for name, call := range calls {
			if err := call(); code(err) != "NotImplemented" || httpStatus(err) != 501 {
				t.Errorf("path style %v: %s: %v, want 501 NotImplemented", pathStyle, name, err)
			}
		}
		got, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("path style %v: the object is gone: %v", pathStyle, err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(b) != body {
			t.Errorf("path style %v: the object now holds %q", pathStyle, b)
		}
		if _, err := admin.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: aws.String(empty)}); err != nil {
			t.Errorf("path style %v: DeleteBucketPolicy deleted the bucket: %v", pathStyle, err)
		}
		if _, err := admin.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: aws.String("not-created-by-versioning")}); code(err) != "NotFound" {
			t.Errorf("path style %v: PutBucketVersioning created a bucket: %v", pathStyle, err)
		}
		// GetBucketLocation is implemented: empty for us-east-1.
		loc, err := admin.GetBucketLocation(f.ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
		if err != nil || loc.LocationConstraint != "" {
			t.Errorf("path style %v: GetBucketLocation: %v %+v", pathStyle, err, loc)
		}
		if _, err := admin.GetBucketLocation(f.ctx, &s3.GetBucketLocationInput{Bucket: aws.String("no-such-bucket")}); code(err) != "NoSuchBucket" {
			t.Errorf("path style %v: GetBucketLocation of a missing bucket: %v", pathStyle, err)
		}
	}
	// Raw: the key matters, with or without a value, in any case; nothing changes.
	for _, q := range []string{"?tagging", "?tagging=", "?acl=x", "?Tagging", "?retention", "?legal-hold", "?x-id=PutObjectTagging&tagging"} {
		st, body := f.raw("PUT", "/"+bucket+"/tagged.txt"+q, []byte("<Tagging/>"), nil)
		if st != 501 || !strings.Contains(body, "<Code>NotImplemented</Code>") {
			t.Errorf("PUT %s: %d %s", q, st, body)
		}
	}
	for _, q := range []string{"?tagging", "?versions", "?restore"} {
		if st, body := f.raw("DELETE", "/"+bucket+"/tagged.txt"+q, nil, nil); st != 501 {
			t.Errorf("DELETE %s: %d %s", q, st, body)
		}
	}
	// The implemented sub-resources, where no operation of the method
	// takes them, are not the base operation either.
	for _, c := range []struct{ method, path string }{
		{"PUT", "/" + bucket + "/tagged.txt?uploads"},
		{"PUT", "/" + bucket + "/tagged.txt?delete"},
		{"PUT", "/" + bucket + "/tagged.txt?UploadId=x&partNumber=1"},
		{"DELETE", "/" + bucket + "/tagged.txt?partNumber=1"},
		{"DELETE", "/" + bucket + "/tagged.txt?uploads"},
		{"PUT", "/made-by-uploads?uploads"},
		{"PUT", "/made-by-delete?delete"},
		{"DELETE", "/empty-bucket-path?delete"},
		{"DELETE", "/empty-bucket-path?uploads"},
	} {
		if st, body := f.raw(c.method, c.path, []byte("<x/>"), nil); st != 405 {
			t.Errorf("%s %s: %d %s", c.method, c.path, st, body)
		}
	}
	admin := f.client(adminAK, adminSecret, "", true)
	for _, b := range []string{"made-by-uploads", "made-by-delete"} {
		if _, err := admin.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: aws.String(b)}); code(err) != "NotFound" {
			t.Errorf("bucket %s: %v", b, err)
		}
	}
	if _, err := admin.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: aws.String("empty-bucket-path")}); err != nil {
		t.Errorf("empty-bucket-path: %v", err)
	}
	if st, body := f.raw("GET", "/"+bucket+"/tagged.txt", nil, nil); st != 200 || body != "the object's own bytes" {
		t.Errorf("after the refusals: %d %q", st, body)
	}
}

// TestBucketLocationOfAnotherRegion: GetBucketLocation names the configured
// region when it is not us-east-1.
func TestBucketLocationOfAnotherRegion(t *testing.T) {
	f := &fx{Env: apptest.Start(t, func(c *config.Config) { c.Region = "eu-west-1" }), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	loc, err := admin.GetBucketLocation(f.ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)}, func(o *s3.Options) { o.Region = "eu-west-1" })
	if err != nil || loc.LocationConstraint != "eu-west-1" {
		t.Errorf("GetBucketLocation: %v %+v", err, loc)
	}
	// Outside us-east-1 CreateBucket names the region, as on S3.
	eu := func(o *s3.Options) { o.Region = "eu-west-1" }
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("unplaced")}, eu); code(err) != "IllegalLocationConstraintException" {
		t.Errorf("CreateBucket without a location constraint: %v", err)
	}
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("placed"),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: "eu-west-1"}}, eu); err != nil {
		t.Errorf("CreateBucket in eu-west-1: %v", err)
	}
}

// A long-term access key sent with a session token is refused on S3
// (InvalidToken), not taken as the IAM user with the token ignored.
func TestLongTermKeyWithATokenOnS3(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	c := f.client(adminAK, adminSecret, "some-session-token", true)
	if _, err := c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("tok/x"), Body: strings.NewReader("x")}); code(err) != "InvalidToken" {
		t.Errorf("PutObject: %v, want InvalidToken", err)
	}
}

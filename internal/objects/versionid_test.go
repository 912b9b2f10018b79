package objects_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/writ-id/writ/internal/apptest"
)

// Buckets are not versioned: every object's version is "null". An
// operation naming another version is InvalidArgument and leaves the
// current object alone (it deleted it); "null" names the current one.
func TestVersionIDs(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	c := f.client(alice.ak, alice.secret, alice.token, false)
	key := "private/" + alice.id + "/versioned.txt"
	put := func() {
		t.Helper()
		if _, err := c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("current")}); err != nil {
			t.Fatal(err)
		}
	}
	put()
	if _, err := c.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")}); code(err) != "InvalidArgument" {
		t.Fatalf("DeleteObject of another version: %v", err)
	}
	if _, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String("v2")}); code(err) != "InvalidArgument" {
		t.Fatalf("GetObject of another version: %v", err)
	}
	_, err := c.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(key + ".copy"),
		CopySource: aws.String(source(bucket, key) + "?versionId=v2")})
	if code(err) != "InvalidArgument" {
		t.Fatalf("CopyObject from another version: %v", err)
	}
	out, err := c.DeleteObjects(f.ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket),
		Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: aws.String(key), VersionId: aws.String("v2")}}}})
	if err != nil || len(out.Errors) != 1 || aws.ToString(out.Errors[0].Code) != "InvalidArgument" || len(out.Deleted) != 0 {
		t.Fatalf("DeleteObjects of another version: %+v %v", out, err)
	}
	if body, _ := f.read(c, bucket, key); body != "current" {
		t.Fatalf("after requests for other versions the object is %q", body)
	}
	// "null" is the current object's version.
	if got, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String("null")}); err != nil {
		t.Fatalf("GetObject version null: %v", err)
	} else {
		got.Body.Close()
	}
	if _, err := c.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String("null")}); err != nil {
		t.Fatalf("DeleteObject version null: %v", err)
	}
	if _, err := c.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); code(err) != "NotFound" {
		t.Fatalf("after deleting version null: %v", err)
	}
}

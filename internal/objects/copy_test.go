package objects_test

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/writ-id/writ/internal/apptest"
)

// source is an x-amz-copy-source value: bucket/key, each segment escaped.
func source(b, k string) string {
	segs := strings.Split(k, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return b + "/" + strings.Join(segs, "/")
}

func (f *fx) read(c *s3.Client, b, k string) (string, *s3.GetObjectOutput) {
	f.t.Helper()
	out, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(k)})
	if err != nil {
		f.t.Fatalf("get %s: %v", k, err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	return string(body), out
}

func TestCopyObject(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	ac := f.client(alice.ak, alice.secret, alice.token, false)
	bc := f.client(bob.ak, bob.secret, bob.token, true)
	mine := "private/" + alice.id + "/"
	src := mine + "report 2026 ü.txt"
	put, err := ac.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(src), Body: strings.NewReader("quarterly numbers"),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"owner": "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	// COPY (the default directive): same bytes, same ETag, same metadata.
	f.Clock.Advance(time.Minute)
	cp, err := ac.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(mine + "copy.txt"), CopySource: aws.String(source(bucket, src))})
	if err != nil {
		t.Fatal(err)
	}
	if r := cp.CopyObjectResult; r == nil || aws.ToString(r.ETag) != aws.ToString(put.ETag) || r.LastModified == nil || r.LastModified.IsZero() {
		t.Fatalf("CopyObjectResult %+v", r)
	}
	body, got := f.read(ac, bucket, mine+"copy.txt")
	if body != "quarterly numbers" || aws.ToString(got.ContentType) != "text/plain" || got.Metadata["owner"] != "alice" {
		t.Errorf("copy: %q %s %v", body, aws.ToString(got.ContentType), got.Metadata)
	}
	// REPLACE, with a leading slash and a versionId (ignored) on the source.
	if _, err := ac.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(mine + "replaced.txt"),
		CopySource: aws.String("/" + source(bucket, src) + "?versionId=null"), MetadataDirective: s3types.MetadataDirectiveReplace,
		ContentType: aws.String("text/markdown"), Metadata: map[string]string{"stage": "final"}}); err != nil {
		t.Fatal(err)
	}
	body, got = f.read(ac, bucket, mine+"replaced.txt")
	if body != "quarterly numbers" || aws.ToString(got.ContentType) != "text/markdown" || got.Metadata["stage"] != "final" || got.Metadata["owner"] != "" {
		t.Errorf("replace: %q %s %v", body, aws.ToString(got.ContentType), got.Metadata)
	}
	// Conditions on the source.
	conds := []struct {
		name string
		in   s3.CopyObjectInput
		want string
	}{
		{"if-match other", s3.CopyObjectInput{CopySourceIfMatch: aws.String(`"0123"`)}, "PreconditionFailed"},
		{"if-match", s3.CopyObjectInput{CopySourceIfMatch: put.ETag}, ""},
		{"if-none-match same", s3.CopyObjectInput{CopySourceIfNoneMatch: put.ETag}, "PreconditionFailed"},
		{"if-none-match other", s3.CopyObjectInput{CopySourceIfNoneMatch: aws.String(`"0123"`)}, ""},
		{"if-modified-since later", s3.CopyObjectInput{CopySourceIfModifiedSince: aws.Time(f.Clock.Now().Add(time.Hour))}, "PreconditionFailed"},
		{"if-unmodified-since earlier", s3.CopyObjectInput{CopySourceIfUnmodifiedSince: aws.Time(f.Clock.Now().Add(-time.Hour))}, "PreconditionFailed"},
		{"if-match wins over if-unmodified-since", s3.CopyObjectInput{CopySourceIfMatch: put.ETag, CopySourceIfUnmodifiedSince: aws.Time(f.Clock.Now().Add(-time.Hour))}, ""},
	}
	for _, c := range conds {
		in := c.in
		in.Bucket, in.Key, in.CopySource = aws.String(bucket), aws.String(mine+"cond.txt"), aws.String(source(bucket, src))
		if _, err := ac.CopyObject(f.ctx, &in); code(err) != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// Onto itself only with REPLACE.
	if _, err := ac.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(src), CopySource: aws.String(source(bucket, src))}); code(err) != "InvalidRequest" {
		t.Errorf("copy onto itself: %v", err)
	}
	// Across prefixes: refused both ways, nothing written.
	bobKey := "private/" + bob.id + "/stolen.txt"
	if _, err := ac.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(bobKey), CopySource: aws.String(source(bucket, src))}); code(err) != "AccessDenied" {
		t.Errorf("alice copies into bob's prefix: %v", err)
	}
	if _, err := bc.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(bobKey), CopySource: aws.String(source(bucket, src))}); code(err) != "AccessDenied" {
		t.Errorf("bob copies alice's object: %v", err)
	}
	admin := f.client(adminAK, adminSecret, "", true)
	if f.exists(admin, bucket, bobKey) {
		t.Error("a refused copy wrote an object")
	}
	// A missing source: NoSuchKey for who may list it, AccessDenied otherwise.
	if _, err := ac.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(mine + "x"), CopySource: aws.String(source(bucket, mine+"missing"))}); code(err) != "NoSuchKey" {
		t.Errorf("missing source: %v", err)
	}
	if _, err := admin.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("x"), CopySource: aws.String("nope/x")}); code(err) != "NoSuchBucket" {
		t.Errorf("missing source bucket: %v", err)
	}
	if _, err := admin.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("x"), CopySource: aws.String(bucket)}); code(err) != "InvalidArgument" {
		t.Errorf("source without key: %v", err)
	}
}

// TestGetObjectDateConditions: If-Modified-Since / If-Unmodified-Since, with
// S3's precedence (If-Match over If-Unmodified-Since, If-None-Match over
// If-Modified-Since).
func TestGetObjectDateConditions(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	put, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("dated"), Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	at := f.Clock.Now()
	status := func(err error) int {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) {
			return re.HTTPStatusCode()
		}
		if err != nil {
			return -1
		}
		return 200
	}
	cases := []struct {
		name string
		in   s3.GetObjectInput
		want int
	}{
		{"modified since before", s3.GetObjectInput{IfModifiedSince: aws.Time(at.Add(-time.Hour))}, 200},
		{"modified since after", s3.GetObjectInput{IfModifiedSince: aws.Time(at.Add(time.Hour))}, 304},
		{"unmodified since after", s3.GetObjectInput{IfUnmodifiedSince: aws.Time(at.Add(time.Hour))}, 200},
		{"unmodified since before", s3.GetObjectInput{IfUnmodifiedSince: aws.Time(at.Add(-time.Hour))}, 412},
		{"if-match wins", s3.GetObjectInput{IfMatch: put.ETag, IfUnmodifiedSince: aws.Time(at.Add(-time.Hour))}, 200},
		{"if-none-match wins", s3.GetObjectInput{IfNoneMatch: aws.String(`"0123"`), IfModifiedSince: aws.Time(at.Add(time.Hour))}, 200},
	}
	for _, c := range cases {
		in := c.in
		in.Bucket, in.Key = aws.String(bucket), aws.String("dated")
		out, err := admin.GetObject(f.ctx, &in)
		if err == nil {
			out.Body.Close()
		}
		if got := status(err); got != c.want {
			t.Errorf("%s: %d (%v), want %d", c.name, got, err, c.want)
		}
		if c.want == 412 && code(err) != "PreconditionFailed" {
			t.Errorf("%s: code %s", c.name, code(err))
		}
	}
}

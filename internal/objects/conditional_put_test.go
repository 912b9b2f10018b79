package objects_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
)

// TestConditionalPutObject: PutObject with If-None-Match: * or If-Match
// writes only when the condition holds, and otherwise answers 412 (404
// NoSuchKey for If-Match without an object) leaving the object as it was.
func TestConditionalPutObject(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	put := func(key, body string, in s3.PutObjectInput) (*s3.PutObjectOutput, error) {
		in.Bucket, in.Key, in.Body = aws.String(bucket), aws.String(key), strings.NewReader(body)
		return admin.PutObject(f.ctx, &in)
	}
	first, err := put("cond", "first", s3.PutObjectInput{IfNoneMatch: aws.String("*")})
	if err != nil {
		t.Fatalf("If-None-Match: * on a new key: %v", err)
	}
	etag := aws.ToString(first.ETag)
	refused := []struct {
		name string
		in   s3.PutObjectInput
	}{
		{"If-None-Match: * on an existing key", s3.PutObjectInput{IfNoneMatch: aws.String("*")}},
		{"If-Match another ETag", s3.PutObjectInput{IfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)}},
		{"If-Match a list without it", s3.PutObjectInput{IfMatch: aws.String(`"aa", "bb"`)}},
	}
	for _, c := range refused {
		if _, err := put("cond", "overwritten", c.in); code(err) != "PreconditionFailed" || httpStatus(err) != 412 {
			t.Errorf("%s: %v, want 412 PreconditionFailed", c.name, err)
		}
		if got, _ := f.read(admin, bucket, "cond"); got != "first" {
			t.Fatalf("%s: the object now holds %q", c.name, got)
		}
	}
	if _, err := put("missing", "x", s3.PutObjectInput{IfMatch: aws.String(etag)}); code(err) != "NoSuchKey" || httpStatus(err) != 404 {
		t.Errorf("If-Match without an object: %v, want 404 NoSuchKey", err)
	}
	if f.exists(admin, bucket, "missing") {
		t.Error("If-Match without an object wrote it")
	}
	if _, err := put("cond", "x", s3.PutObjectInput{IfNoneMatch: aws.String(etag)}); code(err) != "NotImplemented" {
		t.Errorf("If-None-Match with an ETag: %v, want NotImplemented", err)
	}
	// If-Match that names the current ETag: quoted, bare, in a list, or *.
	forms := []func(string) string{
		func(e string) string { return e },
		func(e string) string { return strings.Trim(e, `"`) },
		func(e string) string { return `"aa", ` + e },
		func(string) string { return "*" },
	}
	for i, form := range forms {
		im := form(etag)
		out, err := put("cond", fmt.Sprint("body ", i), s3.PutObjectInput{IfMatch: aws.String(im)})
		if err != nil {
			t.Fatalf("If-Match %s: %v", im, err)
		}
		etag = aws.ToString(out.ETag)
		if got, _ := f.read(admin, bucket, "cond"); got != fmt.Sprint("body ", i) {
			t.Errorf("If-Match %s: the object holds %q", im, got)
		}
	}
}

// TestConcurrentIfNoneMatchPuts: of concurrent If-None-Match: * writes of
// one key, exactly one succeeds and its bytes are the object's.
func TestConcurrentIfNoneMatchPuts(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	const writers = 6
	for round := 0; round < 4; round++ {
		key := fmt.Sprint("race-", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []int
		start := make(chan struct{})
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := bytes.Repeat([]byte{byte('a' + i)}, 256<<10)
				<-start
				_, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), IfNoneMatch: aws.String("*")})
				switch {
				case err == nil:
					mu.Lock()
					won = append(won, i)
					mu.Unlock()
				case code(err) != "PreconditionFailed":
					t.Errorf("writer %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("round %d: %d writers succeeded (%v), want exactly one", round, len(won), won)
		}
		got, _ := f.read(admin, bucket, key)
		if got != strings.Repeat(string(rune('a'+won[0])), 256<<10) {
			t.Errorf("round %d: the object is not the winner's", round)
		}
	}
}

// TestConditionalCompleteMultipartUpload: CompleteMultipartUpload honors
// If-None-Match: * as PutObject does (transfer managers switch to multipart
// for large objects): on an existing key it is 412, the object is left as
// it was and the upload stays, to be completed without the condition.
func TestConditionalCompleteMultipartUpload(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	key := "cond-multipart"
	upload := func() (*string, []s3types.CompletedPart) {
		t.Helper()
		cu, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		up, err := admin.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cu.UploadId,
			PartNumber: aws.Int32(1), Body: strings.NewReader("multipart body")})
		if err != nil {
			t.Fatal(err)
		}
		return cu.UploadId, []s3types.CompletedPart{{ETag: up.ETag, PartNumber: aws.Int32(1)}}
	}
	complete := func(id *string, parts []s3types.CompletedPart, ifNoneMatch *string) error {
		_, err := admin.CompleteMultipartUpload(f.ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
			UploadId: id, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}, IfNoneMatch: ifNoneMatch})
		return err
	}
	id, parts := upload()
	if err := complete(id, parts, aws.String("*")); err != nil {
		t.Fatalf("If-None-Match: * on a new key: %v", err)
	}
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("newer")}); err != nil {
		t.Fatal(err)
	}
	id, parts = upload()
	if err := complete(id, parts, aws.String("*")); code(err) != "PreconditionFailed" {
		t.Fatalf("If-None-Match: * on an existing key: %v", err)
	}
	if body, _ := f.read(admin, bucket, key); body != "newer" {
		t.Fatalf("a refused completion replaced the object: %q", body)
	}
	if err := complete(id, parts, nil); err != nil {
		t.Fatalf("the upload, completed without the condition: %v", err)
	}
	if body, _ := f.read(admin, bucket, key); body != "multipart body" {
		t.Fatalf("after the completion: %q", body)
	}
}

// TestConditionalCopyObject: CopyObject honors the destination's
// If-None-Match: * and If-Match as PutObject does.
func TestConditionalCopyObject(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	for k, body := range map[string]string{"cc/src": "source", "cc/dst": "destination"} {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	copyTo := func(key string, in s3.CopyObjectInput) error {
		in.Bucket, in.Key, in.CopySource = aws.String(bucket), aws.String(key), aws.String(bucket+"/cc/src")
		_, err := admin.CopyObject(f.ctx, &in)
		return err
	}
	if err := copyTo("cc/dst", s3.CopyObjectInput{IfNoneMatch: aws.String("*")}); code(err) != "PreconditionFailed" {
		t.Errorf("If-None-Match: * onto an existing key: %v", err)
	}
	if err := copyTo("cc/dst", s3.CopyObjectInput{IfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)}); code(err) != "PreconditionFailed" {
		t.Errorf("If-Match another ETag: %v", err)
	}
	if body, _ := f.read(admin, bucket, "cc/dst"); body != "destination" {
		t.Fatalf("a refused copy replaced the destination: %q", body)
	}
	if err := copyTo("cc/new", s3.CopyObjectInput{IfNoneMatch: aws.String("*")}); err != nil {
		t.Errorf("If-None-Match: * onto a new key: %v", err)
	}
}

// TestConditionalDelete: DeleteObject with If-Match and DeleteObjects with
// an object's ETag delete only the object they name: another ETag is 412
// PreconditionFailed (a per-key PreconditionFailed in DeleteObjects), no
// object is 404 NoSuchKey, and nothing is deleted; the directory buckets'
// size and time conditions are 501 NotImplemented, not ignored.
func TestConditionalDelete(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	put := func(key string) string {
		out, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ETag)
	}
	del := func(key, ifMatch string) error {
		_, err := admin.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), IfMatch: aws.String(ifMatch)})
		return err
	}
	etag := put("d/one")
	if err := del("d/one", `"0123456789abcdef0123456789abcdef"`); code(err) != "PreconditionFailed" || httpStatus(err) != 412 {
		t.Errorf("If-Match another ETag: %v, want 412 PreconditionFailed", err)
	}
	if !f.exists(admin, bucket, "d/one") {
		t.Fatal("a refused conditional delete deleted")
	}
	if err := del("d/none", "*"); code(err) != "NoSuchKey" || httpStatus(err) != 404 {
		t.Errorf("If-Match: * without an object: %v, want 404 NoSuchKey", err)
	}
	if _, err := admin.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("d/one"),
		IfMatchSize: aws.Int64(5)}); code(err) != "NotImplemented" {
		t.Errorf("x-amz-if-match-size: %v, want NotImplemented", err)
	}
	if err := del("d/one", etag); err != nil || f.exists(admin, bucket, "d/one") {
		t.Fatalf("If-Match the ETag: %v, exists %v", err, f.exists(admin, bucket, "d/one"))
	}

	put("d/keep")
	gone := put("d/gone")
	out, err := admin.DeleteObjects(f.ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{
		{Key: aws.String("d/keep"), ETag: aws.String(`"0123456789abcdef0123456789abcdef"`)},
		{Key: aws.String("d/gone"), ETag: aws.String(gone)},
		{Key: aws.String("d/missing"), ETag: aws.String(gone)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]string{}
	for _, e := range out.Errors {
		errs[aws.ToString(e.Key)] = aws.ToString(e.Code)
	}
	if len(out.Deleted) != 1 || aws.ToString(out.Deleted[0].Key) != "d/gone" || errs["d/keep"] != "PreconditionFailed" || errs["d/missing"] != "NoSuchKey" {
		t.Fatalf("DeleteObjects with ETags: deleted %+v, errors %v", out.Deleted, errs)
	}
	if !f.exists(admin, bucket, "d/keep") || f.exists(admin, bucket, "d/gone") {
		t.Fatal("DeleteObjects with ETags deleted the wrong objects")
	}
}

// A conditional delete reads as much as it deletes (its answer tells
// whether the key exists and whether its ETag is the one named), so it
// needs s3:GetObject too, and a missing key is NoSuchKey only to a caller
// who may list: a delete-only caller learns nothing from it.
func TestConditionalDeleteNeedsRead(t *testing.T) {
	f := &fx{Env: apptest.Start(t, func(c *config.Config) {
		c.IAM.Users = append(c.IAM.Users, config.IAMUser{Name: "janitor", AccessKeyID: "AKIAWRITJANITOR00001",
			SecretAccessKey: config.NewSecret("janitor-secret"), Policy: config.NewPolicyDoc([]byte(
				`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:DeleteObject","Resource":"*"}]}`))},
			config.IAMUser{Name: "reader", AccessKeyID: "AKIAWRITREADER000001",
				SecretAccessKey: config.NewSecret("reader-secret"), Policy: config.NewPolicyDoc([]byte(
					`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:DeleteObject","s3:GetObject"],"Resource":"*"}]}`))})
	}), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("j/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	janitor := f.client("AKIAWRITJANITOR00001", "janitor-secret", "", true)
	for _, key := range []string{"j/x", "j/missing"} {
		_, err := janitor.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), IfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)})
		if code(err) != "AccessDenied" {
			t.Errorf("delete-only caller, If-Match on %s: %v, want AccessDenied", key, err)
		}
	}
	reader := f.client("AKIAWRITREADER000001", "reader-secret", "", true)
	if _, err := reader.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("j/missing"), IfMatch: aws.String("*")}); code(err) != "AccessDenied" {
		t.Errorf("a caller who may not list, If-Match on a missing key: %v, want AccessDenied", err)
	}
	if _, err := reader.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("j/x"), IfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)}); code(err) != "PreconditionFailed" {
		t.Errorf("a caller who may read, another ETag: %v, want PreconditionFailed", err)
	}
	// Unconditional deletes need s3:DeleteObject alone, as before.
	if _, err := janitor.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("j/x")}); err != nil || f.exists(admin, bucket, "j/x") {
		t.Fatalf("an unconditional delete: %v", err)
	}
}

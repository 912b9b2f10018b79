package objects_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/store"
)

const (
	adminAK     = "AKIAWRITDEMOADMIN001"
	adminSecret = "writ-demo-admin-secret"
)

// raw sends a request signed (SigV4, as an S3 client does) with the admin's
// key, for what the SDK will not send: missing or wrong digests.
func (f *fx) raw(method, path string, body []byte, hdr map[string]string) (int, string) {
	f.t.Helper()
	resp, b := f.rawResp(method, path, body, hdr)
	return resp.StatusCode, b
}

// rawResp is raw, answering the response (its body read and closed) too.
func (f *fx) rawResp(method, path string, body []byte, hdr map[string]string) (*http.Response, string) {
	f.t.Helper()
	return f.rawWith(method, path, body, hdr, rawOpts{})
}

// rawOpts are what rawWith does otherwise than rawResp.
type rawOpts struct {
	region string            // the credential scope's region ("": us-east-1)
	noSHA  bool              // send no x-amz-content-sha256 (the hash is still signed)
	after  map[string]string // headers added once the request is signed
}

// rawWith is rawResp, signed and sent as o says.
func (f *fx) rawWith(method, path string, body []byte, hdr map[string]string, o rawOpts) (*http.Response, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.App.URL(app.Objects)+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256(body)
	if !o.noSHA {
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	}
	region := o.region
	if region == "" {
		region = "us-east-1"
	}
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: adminAK, SecretAccessKey: adminSecret}, req, hex.EncodeToString(sum[:]), "s3", region, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range o.after {
		req.Header.Set(k, v)
	}
	return f.send(req)
}

// send sends req and answers the response, its body read and closed.
func (f *fx) send(req *http.Request) (*http.Response, string) {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// withRequestID sends the SDK call under a request id, to find its audit events.
func withRequestID(id string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("X-Request-Id", id))
	}
}

func (f *fx) exists(c *s3.Client, b, k string) bool {
	_, err := c.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String(k)})
	return err == nil
}

func TestDeleteBucket(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	bc := f.client(bob.ak, bob.secret, bob.token, true)
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("scratch")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("scratch"), Key: aws.String("a/b.txt"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	// An upload in progress does not keep a bucket alive (it goes with it).
	if _, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("scratch"), Key: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.DeleteBucket(f.ctx, &s3.DeleteBucketInput{Bucket: aws.String("scratch")}); code(err) != "AccessDenied" {
		t.Errorf("bob deletes a bucket: %v", err)
	}
	if _, err := admin.DeleteBucket(f.ctx, &s3.DeleteBucketInput{Bucket: aws.String("scratch")}); code(err) != "BucketNotEmpty" {
		t.Fatalf("delete a bucket holding an object: %v", err)
	}
	if !f.exists(admin, "scratch", "a/b.txt") {
		t.Fatal("the refused DeleteBucket lost the object")
	}
	if _, err := admin.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String("scratch"), Key: aws.String("a/b.txt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeleteBucket(f.ctx, &s3.DeleteBucketInput{Bucket: aws.String("scratch")}); err != nil {
		t.Fatalf("delete the empty bucket: %v", err)
	}
	if _, err := admin.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: aws.String("scratch")}); code(err) != "NotFound" {
		t.Errorf("HeadBucket after delete: %v", err)
	}
	lb, err := admin.ListBuckets(f.ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != bucket {
		t.Errorf("ListBuckets after delete: %v %+v", err, lb)
	}
	if _, err := admin.DeleteBucket(f.ctx, &s3.DeleteBucketInput{Bucket: aws.String("scratch")}); code(err) != "NoSuchBucket" {
		t.Errorf("delete a missing bucket: %v", err)
	}
	// Names that are paths, not buckets, reach nothing.
	for _, p := range []string{"DELETE /..", "DELETE /.", "GET /../x", "PUT /./x", "GET /.."} {
		m, path, _ := strings.Cut(p, " ")
		if s, body := f.raw(m, path, nil, nil); s != 400 || !strings.Contains(body, "InvalidBucketName") {
			t.Errorf("DELETE %s: %d %s", p, s, body)
		}
	}
	if _, err := admin.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("the store is gone: %v", err)
	}
	// The name is free again.
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("scratch")}); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteObjects(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	alice := f.credsFor("alice", "Alice-Passw0rd")
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	bc := f.client(bob.ak, bob.secret, bob.token, false)
	own := func(s string) string { return "private/" + bob.id + "/" + s }
	aliceKey := "private/" + alice.id + "/keep.txt"
	for _, k := range []string{own("1"), own("2"), own("dir/3"), aliceKey} {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(ks ...string) []s3types.ObjectIdentifier {
		var out []s3types.ObjectIdentifier
		for _, k := range ks {
			out = append(out, s3types.ObjectIdentifier{Key: aws.String(k)})
		}
		return out
	}
	out, err := bc.DeleteObjects(f.ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket),
		Delete: &s3types.Delete{Objects: ids(own("1"), aliceKey, own("dir/3"), own("never-existed"))}}, withRequestID("delete-mixed"))
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, d := range out.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	if fmt.Sprint(deleted) != fmt.Sprint([]string{own("1"), own("dir/3"), own("never-existed")}) {
		t.Errorf("deleted %q", deleted)
	}
	if len(out.Errors) != 1 || aws.ToString(out.Errors[0].Key) != aliceKey || aws.ToString(out.Errors[0].Code) != "AccessDenied" {
		t.Errorf("errors %+v", out.Errors)
	}
	for k, want := range map[string]bool{own("1"): false, own("dir/3"): false, own("2"): true, aliceKey: true} {
		if got := f.exists(admin, bucket, k); got != want {
			t.Errorf("%s exists: %v, want %v", k, got, want)
		}
	}
	// Each key is its own audited decision.
	evs := f.AuditEvents(t, store.AuditFilter{RequestID: "delete-mixed"})
	var got []string
	for _, e := range evs {
		if e.Component == "objects" {
			got = append(got, e.Outcome+" "+e.Action+" "+strings.TrimPrefix(e.Resource, "arn:aws:s3:::"+bucket+"/"))
		}
	}
	want := []string{"allow s3:DeleteObject " + own("1"), "deny s3:DeleteObject " + aliceKey, "allow s3:DeleteObject " + own("dir/3"), "allow s3:DeleteObject " + own("never-existed")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit:\n got %q\nwant %q", got, want)
	}
	// Quiet: only the errors come back.
	out, err = bc.DeleteObjects(f.ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket),
		Delete: &s3types.Delete{Objects: ids(own("2"), aliceKey), Quiet: aws.Bool(true)}})
	if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 1 {
		t.Errorf("quiet: %v %+v", err, out)
	}
	if f.exists(admin, bucket, own("2")) {
		t.Error("quiet delete left the object")
	}
	// At most 1000 keys.
	var many []string
	for i := 0; i < 1001; i++ {
		many = append(many, own(fmt.Sprint("k", i)))
	}
	if _, err := bc.DeleteObjects(f.ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids(many...)}}); code(err) != "MalformedXML" {
		t.Errorf("1001 keys: %v", err)
	}
	if out, err := bc.DeleteObjects(f.ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids(many[:1000]...)}}); err != nil || len(out.Deleted) != 1000 {
		t.Errorf("1000 keys: %v", err)
	}
	if _, err := admin.DeleteObjects(f.ctx, &s3.DeleteObjectsInput{Bucket: aws.String("nope"), Delete: &s3types.Delete{Objects: ids("x")}}); code(err) != "NoSuchBucket" {
		t.Errorf("missing bucket: %v", err)
	}
	// The body must carry a Content-MD5 or x-amz-checksum-*, and match it.
	doc := []byte(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>` + aliceKey + `</Key></Object></Delete>`)
	md := md5.Sum(doc)
	if s, b := f.raw("POST", "/"+bucket+"?delete", doc, nil); s != 400 || !strings.Contains(b, "<Code>InvalidRequest</Code>") {
		t.Errorf("no digest: %d %s", s, b)
	}
	if s, b := f.raw("POST", "/"+bucket+"?delete", doc, map[string]string{"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}); s != 400 || !strings.Contains(b, "<Code>BadDigest</Code>") {
		t.Errorf("wrong Content-MD5: %d %s", s, b)
	}
	if s, b := f.raw("POST", "/"+bucket+"?delete", doc, map[string]string{"x-amz-checksum-sha256": base64.StdEncoding.EncodeToString(make([]byte, 32))}); s != 400 || !strings.Contains(b, "<Code>BadDigest</Code>") {
		t.Errorf("wrong x-amz-checksum-sha256: %d %s", s, b)
	}
	if !f.exists(admin, bucket, aliceKey) {
		t.Fatal("a refused DeleteObjects deleted")
	}
	if s, b := f.raw("POST", "/"+bucket+"?delete", doc, map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(md[:])}); s != 200 || !strings.Contains(b, "<Deleted><Key>"+aliceKey+"</Key></Deleted>") {
		t.Errorf("with Content-MD5: %d %s", s, b)
	}
	if s, b := f.raw("POST", "/"+bucket+"?delete", []byte("<Delete><Object>"), map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(md5sum([]byte("<Delete><Object>")))}); s != 400 || !strings.Contains(b, "<Code>MalformedXML</Code>") {
		t.Errorf("malformed: %d %s", s, b)
	}
}

func md5sum(b []byte) []byte {
	s := md5.Sum(b)
	return s[:]
}

// TestBucketEdges: CreateBucket and HeadBucket as S3 answers them in
// us-east-1: a name S3 refuses is InvalidBucketName; a location
// constraint is refused (none belongs in us-east-1); creating one's own
// bucket again is 200; HeadBucket names the region, to an anonymous caller
// too, so that the transfer manager's GetBucketRegion finds it.
func TestBucketEdges(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	for _, name := range []string{"192.168.1.1", "ends-with-dash-", "xn--punycode", "my-bucket-s3alias"} {
		if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); code(err) != "InvalidBucketName" {
			t.Errorf("CreateBucket %s: %v, want InvalidBucketName", name, err)
		}
	}
	for lc, want := range map[s3types.BucketLocationConstraint]string{"eu-west-1": "IllegalLocationConstraintException", "us-east-1": "InvalidLocationConstraint"} {
		_, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("located"),
			CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: lc}})
		if code(err) != want {
			t.Errorf("LocationConstraint %s: %v, want %s", lc, err, want)
		}
	}
	if _, err := admin.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: aws.String("located")}); code(err) != "NotFound" {
		t.Errorf("a refused CreateBucket made the bucket: %v", err)
	}
	for range 2 {
		if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("mine-again")}); err != nil {
			t.Fatalf("CreateBucket of one's own bucket in us-east-1: %v", err)
		}
	}
	anon := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Objects)), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	region, err := manager.GetBucketRegion(f.ctx, anon, bucket)
	if err != nil || region != "us-east-1" {
		t.Fatalf("GetBucketRegion: %q %v", region, err)
	}
}

// ListBuckets gives each bucket its creation time: a configured bucket's
// first start, an API-created bucket's CreateBucket, kept across restarts.
func TestListBucketsCreationDate(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	started := f.Clock.Now()
	f.Clock.Advance(10 * time.Minute) // within the signature's allowed skew
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("later")}); err != nil {
		t.Fatal(err)
	}
	out, err := admin.ListBuckets(f.ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]time.Time{}
	for _, b := range out.Buckets {
		created[aws.ToString(b.Name)] = aws.ToTime(b.CreationDate)
	}
	if d := created[bucket].Sub(started); d < -time.Second || d > time.Second {
		t.Errorf("%s created %v, want about %v", bucket, created[bucket], started)
	}
	if d := created["later"].Sub(started.Add(10 * time.Minute)); d < -time.Second || d > time.Second {
		t.Errorf("later created %v, want about %v", created["later"], started.Add(10*time.Minute))
	}
}

package objects_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/store"
)

// sendPresigned sends a presigned request as the SDK documents it: to its
// URL (through the loopback listener, the Host it was signed for), with
// the SignedHeader it came with, and hdr besides.
func (f *fx) sendPresigned(p *v4.PresignedHTTPRequest, body []byte, hdr map[string]string) (*http.Response, string) {
	f.t.Helper()
	u, err := url.Parse(p.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	req, err := http.NewRequest(p.Method, f.App.URL(app.Objects)+u.EscapedPath()+"?"+u.RawQuery, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Host = u.Host
	for k, vs := range p.SignedHeader {
		if !strings.EqualFold(k, "Host") {
			req.Header[k] = vs
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return f.send(req)
}

// s3ErrorXML is an S3 error response body.
type s3ErrorXML struct {
	Code, Message, Region, HeadersNotSigned string
}

func errorBody(body string) s3ErrorXML {
	var e s3ErrorXML
	xml.Unmarshal([]byte(body), &e)
	return e
}

// notSignedRefusal checks S3's answer to x-amz-* headers the signature
// does not cover: 403 AccessDenied naming them.
func notSignedRefusal(t *testing.T, what string, resp *http.Response, body, names string) {
	t.Helper()
	if e := errorBody(body); resp.StatusCode != 403 || e.Code != "AccessDenied" ||
		e.Message != "There were headers present in the request which were not signed" || e.HeadersNotSigned != names {
		t.Errorf("%s: %d %s", what, resp.StatusCode, body)
	}
}

// TestUnsignedAmzHeadersRefused: an x-amz-* header the signature does not
// cover is refused (403 AccessDenied, HeadersNotSigned), presigned or
// header-signed, before it can change what the request does: a presigned
// PUT does not become a CopyObject of another user's object, a signed
// CopyObject does not gain a REPLACE directive or metadata in transit.
// Presigned URLs used as the SDK documents, and fully signed requests,
// are served.
func TestUnsignedAmzHeadersRefused(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	bc := f.client(bob.ak, bob.secret, bob.token, true)
	diary := "private/" + bob.id + "/diary.txt"
	if _, err := bc.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(diary), Body: strings.NewReader("bob's diary")}); err != nil {
		t.Fatal(err)
	}
	absent := func(key string) {
		t.Helper()
		if f.exists(admin, bucket, key) {
			t.Errorf("%s was written", key)
		}
	}
	ps := s3.NewPresignClient(admin)

	// The reviewer's attack: the holder of a presigned PUT adds
	// x-amz-copy-source to have bob's diary copied where the URL writes.
	up, err := ps.PresignPutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("incoming/upload-1")})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := f.sendPresigned(up, nil, map[string]string{"x-amz-copy-source": bucket + "/" + diary, "X-Request-Id": "unsigned-copy"})
	notSignedRefusal(t, "presigned PUT with x-amz-copy-source", resp, body, "x-amz-copy-source")
	// The refusal is audited, naming the header.
	evs := f.AuditEvents(t, store.AuditFilter{RequestID: "unsigned-copy"})
	if len(evs) != 1 || evs[0].Outcome != "deny" || evs[0].Action != "s3:authenticate" || !strings.Contains(evs[0].Reason, "x-amz-copy-source") {
		t.Errorf("audit: %+v", evs)
	}
	resp, body = f.sendPresigned(up, nil, map[string]string{"x-amz-copy-source": bucket + "/" + diary, "x-amz-metadata-directive": "REPLACE", "x-amz-meta-evil": "1"})
	notSignedRefusal(t, "presigned PUT with a copy source, directive and metadata", resp, body, "x-amz-copy-source, x-amz-meta-evil, x-amz-metadata-directive")
	absent("incoming/upload-1")
	get1, err := ps.PresignGetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("incoming/upload-1")})
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := f.sendPresigned(get1, nil, nil); resp.StatusCode != 404 || strings.Contains(body, "diary") {
		t.Errorf("presigned GET of the refused upload: %d %s", resp.StatusCode, body)
	}
	// The same URL, used as meant, uploads.
	if resp, body := f.sendPresigned(up, []byte("upload 1"), nil); resp.StatusCode != 200 {
		t.Errorf("presigned PUT: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.sendPresigned(get1, nil, nil); resp.StatusCode != 200 || body != "upload 1" {
		t.Errorf("presigned GET: %d %s", resp.StatusCode, body)
	}

	// A presigned PUT with Content-Type and metadata: the SDK signs them as
	// headers (SignedHeader) the holder must send, and nothing more.
	up2, err := ps.PresignPutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("incoming/upload-2"),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"origin": "browser"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, body = f.sendPresigned(up2, []byte("upload 2"), map[string]string{"x-amz-meta-extra": "1"})
	notSignedRefusal(t, "presigned PUT with unsigned metadata", resp, body, "x-amz-meta-extra")
	absent("incoming/upload-2")
	if resp, body := f.sendPresigned(up2, []byte("upload 2"), nil); resp.StatusCode != 200 {
		t.Fatalf("presigned PUT with its signed headers: %d %s", resp.StatusCode, body)
	}
	ho, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("incoming/upload-2")})
	if err != nil || aws.ToString(ho.ContentType) != "text/plain" || len(ho.Metadata) != 1 || ho.Metadata["origin"] != "browser" {
		t.Errorf("the presigned upload's headers: %v %+v", err, ho)
	}

	// Header auth: a header added once the request was signed.
	resp, body = f.rawWith("PUT", "/"+bucket+"/incoming/h-1", nil, nil, rawOpts{after: map[string]string{"x-amz-copy-source": bucket + "/" + diary}})
	notSignedRefusal(t, "signed PUT, x-amz-copy-source added", resp, body, "x-amz-copy-source")
	absent("incoming/h-1")
	copyHdr := map[string]string{"x-amz-copy-source": bucket + "/" + diary}
	resp, body = f.rawWith("PUT", "/"+bucket+"/incoming/h-2", nil, copyHdr, rawOpts{after: map[string]string{"x-amz-metadata-directive": "REPLACE", "x-amz-meta-evil": "1"}})
	notSignedRefusal(t, "signed CopyObject, directive and metadata added", resp, body, "x-amz-meta-evil, x-amz-metadata-directive")
	absent("incoming/h-2")
	resp, body = f.rawWith("PUT", "/"+bucket+"/incoming/h-3", []byte("x"), map[string]string{"x-amz-meta-a": "1"}, rawOpts{after: map[string]string{"x-amz-meta-b": "2"}})
	notSignedRefusal(t, "signed PutObject, metadata added", resp, body, "x-amz-meta-b")
	absent("incoming/h-3")
	// Headers outside x-amz-* (X-Amzn-Trace-Id among them) need no signature.
	if resp, body := f.rawWith("GET", "/"+bucket+"/incoming/upload-1", nil, nil, rawOpts{after: map[string]string{"X-Amzn-Trace-Id": "Root=1-0-0", "X-Other": "1"}}); resp.StatusCode != 200 {
		t.Errorf("unsigned headers outside x-amz-*: %d %s", resp.StatusCode, body)
	}
	// Signed, the same CopyObject is served.
	copyHdr["x-amz-metadata-directive"], copyHdr["x-amz-meta-evil"] = "REPLACE", "1"
	if resp, body := f.rawResp("PUT", "/"+bucket+"/incoming/h-2", nil, copyHdr); resp.StatusCode != 200 || !strings.Contains(body, "<CopyObjectResult") {
		t.Errorf("signed CopyObject: %d %s", resp.StatusCode, body)
	}

	// The SDK's own requests sign every x-amz-* header they send.
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("incoming/sdk"), Body: strings.NewReader("sdk"),
		Metadata: map[string]string{"a": "1"}, ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32}); err != nil {
		t.Errorf("SDK PutObject: %v", err)
	}
	if _, err := admin.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("incoming/sdk-copy"), CopySource: aws.String(bucket + "/incoming/sdk"),
		MetadataDirective: s3types.MetadataDirectiveReplace, Metadata: map[string]string{"b": "2"}}); err != nil {
		t.Errorf("SDK CopyObject: %v", err)
	}
}

// TestAnonymousCopyNeedsGetObjectOnTheSource: an unsigned request has no
// signature for x-amz-* headers to be outside of, so what it may do is the
// bucket policy's alone: a Principal "*" grant of s3:PutObject on a prefix
// does not make an anonymous x-amz-copy-source read what the policy does
// not grant it s3:GetObject on.
func TestAnonymousCopyNeedsGetObjectOnTheSource(t *testing.T) {
	f := &fx{Env: apptest.Start(t, withBucketPolicy(`{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::writ-demo/incoming/*"},
		{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/notices/*"}]}`)),
		t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("other")}); err != nil {
		t.Fatal(err)
	}
	for _, bk := range [][2]string{{bucket, "private/secret.txt"}, {bucket, "notices/open.txt"}, {"other", "x.txt"}} {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bk[0]), Key: aws.String(bk[1]), Body: strings.NewReader(bk[1])}); err != nil {
			t.Fatal(err)
		}
	}
	anon := func(key string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", f.App.URL(app.Objects)+"/"+bucket+"/"+key, strings.NewReader("anonymous"))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, src := range []string{bucket + "/private/secret.txt", "other/x.txt"} {
		st, body := anon("incoming/copy", map[string]string{"x-amz-copy-source": src})
		if st != 403 || !strings.Contains(body, "<Code>AccessDenied</Code>") || strings.Contains(body, "HeadersNotSigned") {
			t.Errorf("anonymous copy of %s: %d %s", src, st, body)
		}
		if f.exists(admin, bucket, "incoming/copy") {
			t.Fatalf("anonymous copy of %s was written", src)
		}
	}
	// What the policy grants both ways, it may copy; a plain upload with
	// metadata is the PutObject it grants.
	if st, body := anon("incoming/copy", map[string]string{"x-amz-copy-source": bucket + "/notices/open.txt"}); st != 200 || !strings.Contains(body, "<CopyObjectResult") {
		t.Errorf("anonymous copy of a public object: %d %s", st, body)
	}
	if st, body := anon("incoming/up", map[string]string{"x-amz-meta-from": "anon"}); st != 200 {
		t.Errorf("anonymous upload: %d %s", st, body)
	}
}

// TestHeaderAuthNeedsContentSHA256: a header-signed request without
// x-amz-content-sha256 is S3's 400 InvalidRequest, however small its body.
func TestHeaderAuthNeedsContentSHA256(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		body         []byte
	}{{"PUT", "/" + bucket + "/small", []byte("tiny")}, {"GET", "/" + bucket + "/k", nil}, {"GET", "/" + bucket + "?list-type=2", nil}} {
		resp, body := f.rawWith(c.method, c.path, c.body, nil, rawOpts{noSHA: true})
		if resp.StatusCode != 400 || !strings.Contains(body, "<Code>InvalidRequest</Code>") ||
			!strings.Contains(body, "<Message>Missing required header for this request: x-amz-content-sha256</Message>") {
			t.Errorf("%s %s without x-amz-content-sha256: %d %s", c.method, c.path, resp.StatusCode, body)
		}
		if resp, body := f.rawWith(c.method, c.path, c.body, nil, rawOpts{}); resp.StatusCode != 200 {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	if _, err := admin.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("small")}); err != nil {
		t.Fatal(err)
	}
	f.rawWith("PUT", "/"+bucket+"/small", []byte("tiny"), nil, rawOpts{noSHA: true})
	if f.exists(admin, bucket, "small") {
		t.Error("the refused PUT was written")
	}
}

// TestMissingBucketIsNoSuchBucket: a bucket that does not exist is
// NoSuchBucket (404) to a caller without permissions too, signed or
// anonymous, as in S3 (bucket names are global, their existence no
// secret); an existing bucket's objects stay AccessDenied, a missing key
// included, and creating a bucket without permission stays AccessDenied.
func TestMissingBucketIsNoSuchBucket(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	alice := f.credsFor("alice", "Alice-Passw0rd")
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	bc := f.client(bob.ak, bob.secret, bob.token, true)
	aliceKey := "private/" + alice.id + "/notes.txt"
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	nope, own := aws.String("no-such-bucket"), aws.String("private/"+bob.id+"/x")
	missing := map[string]func() error{
		"GetObject": func() error {
			_, err := bc.GetObject(f.ctx, &s3.GetObjectInput{Bucket: nope, Key: own})
			return err
		},
		"PutObject": func() error {
			_, err := bc.PutObject(f.ctx, &s3.PutObjectInput{Bucket: nope, Key: own, Body: strings.NewReader("x")})
			return err
		},
		"ListObjectsV2": func() error {
			_, err := bc.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: nope})
			return err
		},
		"DeleteObject": func() error {
			_, err := bc.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: nope, Key: own})
			return err
		},
		"CreateMultipartUpload": func() error {
			_, err := bc.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: nope, Key: own})
			return err
		},
		"CopyObject from it": func() error {
			_, err := bc.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: own, CopySource: aws.String("no-such-bucket/x")})
			return err
		},
	}
	for op, call := range missing {
		if err := call(); code(err) != "NoSuchBucket" {
			t.Errorf("%s on a missing bucket: %v", op, err)
		}
	}
	for op, err := range map[string]error{
		"HeadObject": func() error { _, err := bc.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: nope, Key: own}); return err }(),
		"HeadBucket": func() error { _, err := bc.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: nope}); return err }(),
	} {
		var re interface{ HTTPStatusCode() int }
		if !errors.As(err, &re) || re.HTTPStatusCode() != 404 {
			t.Errorf("%s on a missing bucket: %v", op, err)
		}
	}
	if _, err := bc.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: nope}); code(err) != "AccessDenied" {
		t.Errorf("bob creates a bucket: %v", err)
	}
	// An existing bucket keeps its keys from who may not list them.
	for _, k := range []string{aliceKey, "private/" + alice.id + "/missing"} {
		if _, err := bc.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); code(err) != "AccessDenied" {
			t.Errorf("bob reads %s: %v", k, err)
		}
		_, err := bc.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		var re interface{ HTTPStatusCode() int }
		if !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
			t.Errorf("bob heads %s: %v", k, err)
		}
	}
	if _, err := bc.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}); code(err) != "AccessDenied" {
		t.Errorf("bob lists the bucket: %v", err)
	}
	// Anonymous: the same.
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/no-such-bucket/x", 404, "NoSuchBucket"},
		{"PUT", "/no-such-bucket/x", 404, "NoSuchBucket"},
		{"GET", "/no-such-bucket?list-type=2", 404, "NoSuchBucket"},
		{"PUT", "/no-such-bucket", 403, "AccessDenied"},
		{"GET", "/" + bucket + "/" + aliceKey, 403, "AccessDenied"},
		{"GET", "/" + bucket + "/missing", 403, "AccessDenied"},
	} {
		req, _ := http.NewRequest(c.method, f.App.URL(app.Objects)+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), "<Code>"+c.code+"</Code>") {
			t.Errorf("anonymous %s %s: %d %s", c.method, c.path, resp.StatusCode, b)
		}
	}
	if _, err := admin.HeadBucket(f.ctx, &s3.HeadBucketInput{Bucket: nope}); err == nil {
		t.Error("a refused request created the bucket")
	}
}

// TestWrongRegion: a signature scoped to another region is S3's 400
// AuthorizationHeaderMalformed (presigned: AuthorizationQueryParametersError)
// saying which region to use, and naming it in <Region>.
func TestWrongRegion(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	const want = "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'"
	resp, body := f.rawWith("GET", "/"+bucket+"?list-type=2", nil, nil, rawOpts{region: "eu-west-1"})
	if e := errorBody(body); resp.StatusCode != 400 || e.Code != "AuthorizationHeaderMalformed" || e.Message != want || e.Region != "us-east-1" {
		t.Errorf("header auth: %d %s", resp.StatusCode, body)
	}
	eu := f.client(adminAK, adminSecret, "", true)
	_, err := eu.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}, func(o *s3.Options) { o.Region = "eu-west-1" })
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AuthorizationHeaderMalformed" || ae.ErrorMessage() != want {
		t.Errorf("SDK: %v", err)
	}
	ps, err := s3.NewPresignClient(eu).PresignGetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")},
		func(o *s3.PresignOptions) {
			o.ClientOptions = append(o.ClientOptions, func(o *s3.Options) { o.Region = "eu-west-1" })
		})
	if err != nil {
		t.Fatal(err)
	}
	resp, body = f.sendPresigned(ps, nil, nil)
	if e := errorBody(body); resp.StatusCode != 400 || e.Code != "AuthorizationQueryParametersError" || e.Region != "us-east-1" ||
		e.Message != "Error parsing the X-Amz-Credential parameter; the region 'eu-west-1' is wrong; expecting 'us-east-1'" {
		t.Errorf("presigned: %d %s", resp.StatusCode, body)
	}
	// The right region: no <Region>.
	if resp, body := f.rawWith("GET", "/"+bucket+"?list-type=2", nil, nil, rawOpts{}); resp.StatusCode != 200 || errorBody(body).Region != "" {
		t.Errorf("us-east-1: %d %s", resp.StatusCode, body)
	}
}

package objects_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/objects"
)

// served is what GetObject and HeadObject serve of the headers S3 stores
// with an object, by name ("" for one not served); the two must agree.
func (f *fx) served(c *s3.Client, b, k string) map[string]string {
	f.t.Helper()
	_, g := f.read(c, b, k)
	h, err := c.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String(k)})
	if err != nil {
		f.t.Fatalf("head %s: %v", k, err)
	}
	get := map[string]string{"Content-Type": aws.ToString(g.ContentType), "Cache-Control": aws.ToString(g.CacheControl),
		"Content-Disposition": aws.ToString(g.ContentDisposition), "Content-Encoding": aws.ToString(g.ContentEncoding),
		"Content-Language": aws.ToString(g.ContentLanguage), "Expires": aws.ToString(g.ExpiresString)}
	head := map[string]string{"Content-Type": aws.ToString(h.ContentType), "Cache-Control": aws.ToString(h.CacheControl),
		"Content-Disposition": aws.ToString(h.ContentDisposition), "Content-Encoding": aws.ToString(h.ContentEncoding),
		"Content-Language": aws.ToString(h.ContentLanguage), "Expires": aws.ToString(h.ExpiresString)}
	if !maps.Equal(get, head) {
		f.t.Errorf("%s: GetObject serves %v, HeadObject %v", k, get, head)
	}
	return get
}

// TestStoredObjectHeaders: Cache-Control, Content-Disposition,
// Content-Encoding, Content-Language and Expires given at PutObject,
// CreateMultipartUpload or in a presigned PUT are stored with the object
// and served back by GetObject and HeadObject; CopyObject copies them
// (COPY) or takes the request's (REPLACE); response-* parameters still
// override them without changing what is stored.
func TestStoredObjectHeaders(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.clientAt(f.App.URL(app.Objects), true) // presigned URLs of it are fetched as they are
	b := aws.String(bucket)
	expires := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	want := map[string]string{"Content-Type": "text/csv", "Cache-Control": "public, max-age=3600",
		"Content-Disposition": `attachment; filename="report.csv"`, "Content-Encoding": "gzip", "Content-Language": "de-CH",
		"Expires": expires.Format(http.TimeFormat)}
	check := func(what string, got, want map[string]string) {
		t.Helper()
		if !maps.Equal(got, want) {
			t.Errorf("%s: served %v, want %v", what, got, want)
		}
	}
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("put.csv"), Body: strings.NewReader("a,b\n"),
		ContentType: aws.String(want["Content-Type"]), CacheControl: aws.String(want["Cache-Control"]),
		ContentDisposition: aws.String(want["Content-Disposition"]), ContentEncoding: aws.String(want["Content-Encoding"]),
		ContentLanguage: aws.String(want["Content-Language"]), Expires: aws.Time(expires)}); err != nil {
		t.Fatal(err)
	}
	check("PutObject", f.served(admin, bucket, "put.csv"), want)

	// response-* parameters win over what is stored, and leave it as it is.
	out, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("put.csv"),
		ResponseCacheControl: aws.String("no-store"), ResponseContentDisposition: aws.String("inline")})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if aws.ToString(out.CacheControl) != "no-store" || aws.ToString(out.ContentDisposition) != "inline" ||
		aws.ToString(out.ContentLanguage) != want["Content-Language"] || aws.ToString(out.ExpiresString) != want["Expires"] {
		t.Errorf("GetObject with overrides: %q %q %q %q", aws.ToString(out.CacheControl), aws.ToString(out.ContentDisposition),
			aws.ToString(out.ContentLanguage), aws.ToString(out.ExpiresString))
	}
	check("PutObject, after overrides", f.served(admin, bucket, "put.csv"), want)

	// CopyObject: COPY keeps the source's, REPLACE takes the request's only.
	if _, err := admin.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copied.csv"), CopySource: aws.String(source(bucket, "put.csv")),
		CacheControl: aws.String("no-cache")}); err != nil {
		t.Fatal(err)
	}
	check("CopyObject COPY", f.served(admin, bucket, "copied.csv"), want)
	if _, err := admin.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("replaced.csv"), CopySource: aws.String(source(bucket, "put.csv")),
		MetadataDirective: s3types.MetadataDirectiveReplace, ContentType: aws.String("text/plain"), ContentLanguage: aws.String("fr")}); err != nil {
		t.Fatal(err)
	}
	check("CopyObject REPLACE", f.served(admin, bucket, "replaced.csv"), map[string]string{"Content-Type": "text/plain", "Content-Language": "fr",
		"Cache-Control": "", "Content-Disposition": "", "Content-Encoding": "", "Expires": ""})

	// CreateMultipartUpload: the completed object has them.
	mp, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("multipart.csv"),
		ContentType: aws.String(want["Content-Type"]), CacheControl: aws.String(want["Cache-Control"]),
		ContentDisposition: aws.String(want["Content-Disposition"]), ContentEncoding: aws.String(want["Content-Encoding"]),
		ContentLanguage: aws.String(want["Content-Language"]), Expires: aws.Time(expires)})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := admin.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("multipart.csv"), UploadId: mp.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("a,b\n")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CompleteMultipartUpload(f.ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("multipart.csv"), UploadId: mp.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pt.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	check("multipart", f.served(admin, bucket, "multipart.csv"), want)

	// A presigned PUT with them signed, sent as a browser or curl would.
	ps, err := s3.NewPresignClient(admin).PresignPutObject(f.ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("presigned.csv"),
		ContentType: aws.String(want["Content-Type"]), CacheControl: aws.String(want["Cache-Control"]),
		ContentDisposition: aws.String(want["Content-Disposition"]), ContentEncoding: aws.String(want["Content-Encoding"]),
		ContentLanguage: aws.String(want["Content-Language"]), Expires: aws.Time(expires)}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if sh := strings.ToLower(ps.URL); !strings.Contains(sh, "content-disposition") || !strings.Contains(sh, "cache-control") {
		t.Fatalf("the presigned URL does not sign the headers: %s", ps.URL)
	}
	req, err := http.NewRequest(ps.Method, ps.URL, strings.NewReader("a,b\n"))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range ps.SignedHeader {
		if k != "Host" {
			req.Header[k] = vs
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d", resp.StatusCode)
	}
	check("presigned PUT", f.served(admin, bucket, "presigned.csv"), want)
}

// TestStoredContentEncodingWithoutAWSChunked: over HTTPS the SDK adds
// aws-chunked to the Content-Encoding it sends (how the body travels);
// the object keeps only the encoding the caller gave, as S3 does.
func TestStoredContentEncodingWithoutAWSChunked(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	c, modes := f.tlsClient(alice)
	key := "private/" + alice.id + "/notes.txt.gz"
	if _, err := c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("notes")),
		ContentEncoding: aws.String("gzip")}); err != nil {
		t.Fatal(err)
	}
	if m := modes(); len(m) == 0 || m[len(m)-1] != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
		t.Fatalf("payload modes %v: not the SDK's aws-chunked body", m)
	}
	if got := f.served(c, bucket, key)["Content-Encoding"]; got != "gzip" {
		t.Errorf("Content-Encoding %q, want gzip", got)
	}
}

// handlerClient serves the SDK's requests with h in-process, so a request
// reaches the store exactly as the SDK built it: over the network,
// net/http already refuses a header with a control byte before any
// handler runs.
type handlerClient struct{ h http.Handler }

func (c handlerClient) Do(r *http.Request) (*http.Response, error) {
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// TestStoredHeaderControlBytes: a header value with a control byte that
// PutObject, CreateMultipartUpload or CopyObject (REPLACE) would store is
// refused as S3 XML InvalidArgument, and nothing is stored.
func TestStoredHeaderControlBytes(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	h, err := objects.New(f.Cfg, objects.Options{STS: f.App.STS, Now: f.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1"), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(adminAK, adminSecret, ""), HTTPClient: handlerClient{h}})
	b := aws.String(bucket)
	if _, err := c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("src"), Body: strings.NewReader("x"),
		ContentDisposition: aws.String("inline")}); err != nil {
		t.Fatalf("in-process PutObject: %v", err)
	}
	const bad = "attachment\x1b[2J"
	puts := map[string]*s3.PutObjectInput{
		"Cache-Control":       {CacheControl: aws.String(bad)},
		"Content-Disposition": {ContentDisposition: aws.String(bad)},
		"Content-Encoding":    {ContentEncoding: aws.String(bad)},
		"Content-Language":    {ContentLanguage: aws.String(bad)},
		"x-amz-meta-note":     {Metadata: map[string]string{"note": "a\x00b"}},
		"Content-Type":        {ContentType: aws.String("text/plain\x7f")},
	}
	for name, in := range puts {
		in.Bucket, in.Key, in.Body = b, aws.String("put"), strings.NewReader("x")
		if _, err := c.PutObject(f.ctx, in); code(err) != "InvalidArgument" {
			t.Errorf("PutObject, control byte in %s: %v", name, err)
		}
	}
	if _, err := c.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp"), CacheControl: aws.String(bad)}); code(err) != "InvalidArgument" {
		t.Errorf("CreateMultipartUpload, control byte: %v", err)
	}
	if _, err := c.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String(bucket + "/src"),
		MetadataDirective: s3types.MetadataDirectiveReplace, ContentLanguage: aws.String(bad)}); code(err) != "InvalidArgument" {
		t.Errorf("CopyObject REPLACE, control byte: %v", err)
	}
	for _, k := range []string{"put", "copy"} {
		if f.exists(admin, bucket, k) {
			t.Errorf("%s: a refused write stored an object", k)
		}
	}
	if ups, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b}); err != nil || len(ups.Uploads) != 0 {
		t.Errorf("a refused CreateMultipartUpload left uploads: %v %+v", err, ups)
	}
	if got := f.served(admin, bucket, "src")["Content-Disposition"]; got != "inline" {
		t.Errorf("in-process PutObject stored Content-Disposition %q", got)
	}
}

// TestNotModifiedKeepsCacheHeaders: a 304 carries the Cache-Control and
// Expires a 200 would (RFC 9110 §15.4.5), stored or overridden.
func TestNotModifiedKeepsCacheHeaders(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	put, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("cached.txt"), Body: strings.NewReader("x"),
		CacheControl: aws.String("max-age=3600"), Expires: aws.Time(time.Date(2033, 12, 1, 16, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := f.rawResp("GET", "/"+bucket+"/cached.txt", nil, map[string]string{"If-None-Match": *put.ETag})
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("Cache-Control") != "max-age=3600" ||
		resp.Header.Get("Expires") != "Thu, 01 Dec 2033 16:00:00 GMT" || resp.Header.Get("ETag") != *put.ETag {
		t.Fatalf("304: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = f.rawResp("GET", "/"+bucket+"/cached.txt?response-cache-control=no-cache", nil, map[string]string{"If-None-Match": *put.ETag})
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("304 with an override: %d %v", resp.StatusCode, resp.Header)
	}
}

// Headers that ask for protection the store does not give are refused,
// not dropped: an object the caller believes encrypted with its own key,
// locked, or in another account's bucket is never written as if it were.
func TestProtectionHeadersRefused(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	key := aws.String("protect/x")
	sseKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	sum := md5.Sum(bytes.Repeat([]byte{7}, 32))
	put := func(in s3.PutObjectInput) error {
		in.Bucket, in.Key, in.Body = aws.String(bucket), key, strings.NewReader("secret")
		_, err := admin.PutObject(f.ctx, &in)
		return err
	}
	for _, c := range []struct {
		name string
		in   s3.PutObjectInput
		want string
	}{
		{"SSE-C", s3.PutObjectInput{SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(sseKey),
			SSECustomerKeyMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))}, "NotImplemented"},
		{"SSE-KMS", s3.PutObjectInput{ServerSideEncryption: s3types.ServerSideEncryptionAwsKms}, "NotImplemented"},
		{"Object Lock", s3.PutObjectInput{ObjectLockMode: s3types.ObjectLockModeCompliance,
			ObjectLockRetainUntilDate: aws.Time(time.Now().Add(time.Hour))}, "InvalidRequest"},
		{"another bucket owner", s3.PutObjectInput{ExpectedBucketOwner: aws.String("111111111111")}, "AccessDenied"},
	} {
		if err := put(c.in); code(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
		if f.exists(admin, bucket, *key) {
			t.Fatalf("%s: the object was written", c.name)
		}
	}
	// What the store does give is taken: SSE-S3 (AES256), the account's own bucket.
	if err := put(s3.PutObjectInput{ServerSideEncryption: s3types.ServerSideEncryptionAes256, ExpectedBucketOwner: aws.String("000000000000")}); err != nil {
		t.Fatalf("AES256 and the right owner: %v", err)
	}
	_, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: key, SSECustomerAlgorithm: aws.String("AES256"),
		SSECustomerKey: aws.String(sseKey), SSECustomerKeyMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
	if code(err) != "NotImplemented" {
		t.Errorf("GetObject with SSE-C: %v, want NotImplemented", err)
	}
	_, err = admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: key, ExpectedBucketOwner: aws.String("111111111111")})
	if httpStatus(err) != 403 {
		t.Errorf("HeadObject in another owner's bucket: %v, want 403", err)
	}
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("locked"), ObjectLockEnabledForBucket: aws.Bool(true)}); code(err) != "NotImplemented" {
		t.Errorf("CreateBucket with Object Lock: %v, want NotImplemented", err)
	}
}

// User metadata over S3's 2 KB is MetadataTooLarge; an empty copy source
// is a refused copy, not an empty PutObject; CopyObject's LastModified is
// in whole seconds, as HeadObject's.
func TestMetadataLimitAndCopyEdges(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	b := aws.String(bucket)
	big := map[string]string{"a": strings.Repeat("x", 1500), "b": strings.Repeat("y", 600)}
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("meta/big"), Body: strings.NewReader("x"), Metadata: big}); code(err) != "MetadataTooLarge" {
		t.Errorf("2.1 KB of metadata: %v, want MetadataTooLarge", err)
	}
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("meta/ok"), Body: strings.NewReader("x"),
		Metadata: map[string]string{"a": strings.Repeat("x", 2000)}}); err != nil {
		t.Fatalf("2 KB of metadata: %v", err)
	}
	if status, body := f.raw("PUT", "/"+bucket+"/meta/copied", nil, map[string]string{"x-amz-copy-source": ""}); status != 400 || !strings.Contains(body, "Copy Source must mention") {
		t.Errorf("an empty x-amz-copy-source: %d %s, want 400 InvalidArgument", status, body)
	}
	if f.exists(admin, bucket, "meta/copied") {
		t.Error("an empty x-amz-copy-source wrote an object")
	}
	cp, err := admin.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("meta/copy"), CopySource: aws.String(bucket + "/meta/ok")})
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("meta/copy")})
	if err != nil || !aws.ToTime(cp.CopyObjectResult.LastModified).Equal(aws.ToTime(h.LastModified)) {
		t.Errorf("CopyObject's LastModified %v, HeadObject's %v (%v)", aws.ToTime(cp.CopyObjectResult.LastModified), aws.ToTime(h.LastModified), err)
	}
}

package objects_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/sigv4"
)

// tlsClient is an S3 client that reaches the object store through a
// TLS-terminating proxy (as behind a load balancer): over HTTPS the SDK
// sends aws-chunked bodies with trailing checksums. seen records the
// payload modes the store received.
func (f *fx) tlsClient(id identity) (*s3.Client, func() []string) {
	target, _ := url.Parse(f.App.URL(app.Objects))
	var mu sync.Mutex
	var modes []string
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // signed
		mu.Lock()
		modes = append(modes, pr.In.Header.Get("X-Amz-Content-Sha256"))
		mu.Unlock()
	}}
	srv := httptest.NewTLSServer(rp)
	f.t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "example.com"}
	dialer := &net.Dialer{}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, strings.TrimPrefix(srv.URL, "https://"))
	}
	// RequestChecksumCalculation as config.LoadDefaultConfig sets it (s3.New
	// alone leaves it unset: no checksum unless asked for).
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://s3.writ.test:" + port), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(id.ak, id.secret, id.token), HTTPClient: &http.Client{Transport: tr}, RetryMaxAttempts: 1,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported})
	return c, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), modes...)
	}
}

// onlyReader hides Seek, so the SDK must stream the body.
type onlyReader struct{ io.Reader }

// TestAWSChunkedUploadsFromSDK: over HTTPS the SDK's default PutObject and
// UploadPart send aws-chunked bodies with a trailing checksum; they are
// decoded, their checksums verified, and the objects read back intact.
func TestAWSChunkedUploadsFromSDK(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	c, modes := f.tlsClient(alice)
	prefix := "private/" + alice.id + "/"
	small := bytes.Repeat([]byte("chunked body "), 10_000) // 130 KB: several chunks
	for name, in := range map[string]*s3.PutObjectInput{
		"seekable, default checksum": {Body: bytes.NewReader(small)},
		"stream, default checksum":   {Body: onlyReader{bytes.NewReader(small)}, ContentLength: aws.Int64(int64(len(small)))},
		"stream, CRC32C":             {Body: onlyReader{bytes.NewReader(small)}, ContentLength: aws.Int64(int64(len(small))), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c},
		"SHA256":                     {Body: bytes.NewReader(small), ChecksumAlgorithm: types.ChecksumAlgorithmSha256},
		"CRC64NVME":                  {Body: bytes.NewReader(small), ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme},
		"empty":                      {Body: bytes.NewReader(nil)},
	} {
		in.Bucket, in.Key = aws.String(bucket), aws.String(prefix+strings.ReplaceAll(name, " ", "-"))
		want := small
		if name == "empty" {
			want = nil
		}
		if _, err := c.PutObject(f.ctx, in); err != nil {
			t.Fatalf("%s: put: %v", name, err)
		}
		got, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: in.Bucket, Key: in.Key})
		if err != nil {
			t.Fatalf("%s: get: %v", name, err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if !bytes.Equal(b, want) || aws.ToString(got.ContentEncoding) != "" {
			t.Fatalf("%s: read back %d bytes (content-encoding %q), want %d", name, len(b), aws.ToString(got.ContentEncoding), len(want))
		}
	}
	streaming := 0
	for _, m := range modes() {
		if m == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
			streaming++
		}
	}
	if streaming < 3 {
		t.Fatalf("the SDK sent aws-chunked bodies %d times (modes %v): this test no longer covers them", streaming, modes())
	}
	// Multipart through the transfer manager, parts as aws-chunked bodies.
	data := randomBytes(11*mib, 7)
	up := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 5 * mib })
	if _, err := up.Upload(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "big"), Body: onlyReader{bytes.NewReader(data)}}); err != nil {
		t.Fatalf("transfer manager over aws-chunked: %v", err)
	}
	got, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "big")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, data) {
		t.Fatalf("multipart over aws-chunked: read back %d bytes, want %d", len(b), len(data))
	}
}

// TestAWSChunkedRefusals: a wrong trailing checksum, a body shorter than
// its decoded length, or a malformed chunk is refused with S3's error and
// leaves nothing behind.
func TestAWSChunkedRefusals(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	prefix := "private/" + alice.id + "/"
	chunked := map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		"X-Amz-Trailer": "x-amz-checksum-crc32"}
	for name, c := range map[string]struct {
		body, decodedLen, code string
	}{
		"wrong checksum":   {"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", "11", "BadDigest"},
		"short body":       {"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", "12", "IncompleteBody"},
		"malformed size":   {"zz\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", "11", "InvalidChunkSizeError"},
		"cut inside chunk": {"b\r\nhello", "11", "IncompleteBody"},
	} {
		chunked["X-Amz-Decoded-Content-Length"] = c.decodedLen
		f.refusedPut(alice, prefix+strings.ReplaceAll(name, " ", "-"), c.body, chunked, c.code)
	}
	// A payload hash that is none of S3's forms is refused, not trusted.
	f.refusedPut(alice, prefix+"odd-payload-hash", "body", map[string]string{"X-Amz-Content-Sha256": "not-a-hash"}, "InvalidArgument")
}

// refusedPut sends a PutObject of body to key with headers, signed with
// id's credentials, and checks that it is refused with code (a 4xx) and
// leaves no object behind.
func (f *fx) refusedPut(id identity, key, body string, headers map[string]string, code string) {
	f.t.Helper()
	req, _ := http.NewRequest("PUT", f.App.URL(app.Objects)+"/"+bucket+"/"+strings.ReplaceAll(key, ":", "%3A"), strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	signV4(f.t, req, id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 4 || !strings.Contains(string(got), "<Code>"+code+"</Code>") {
		f.t.Fatalf("%s: %d %s, want %s", key, resp.StatusCode, got, code)
	}
	cl := f.client(id.ak, id.secret, id.token, true)
	if _, err := cl.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err == nil {
		f.t.Fatalf("%s: a refused upload left an object", key)
	}
}

// signV4 signs req as the SDK would, with id's temporary credentials and
// the payload hash its X-Amz-Content-Sha256 names.
func signV4(t testing.TB, req *http.Request, id identity) {
	t.Helper()
	req.Header.Set("X-Amz-Security-Token", id.token)
	err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: id.ak, SecretAccessKey: id.secret, SessionToken: id.token}, req,
		req.Header.Get("X-Amz-Content-Sha256"), "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
}

// TestPutObject64MiBOverTLS: one 64 MiB PutObject with the SDK's default
// checksum over HTTPS (an aws-chunked body with a trailing CRC32) reads
// back byte for byte with S3's ETag, the checksum verified by the store.
func TestPutObject64MiBOverTLS(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	data := randomBytes(64*mib, 64)
	sum := md5.Sum(data)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	c, modes := f.tlsClient(alice)
	key := aws.String("private/" + alice.id + "/64MiB")
	put, err := c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if m := modes(); len(m) != 1 || m[0] != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
		t.Errorf("payload modes %v: not the SDK's aws-chunked body", m)
	}
	// The store answers x-amz-checksum-crc32 only for a checksum it received and verified.
	if aws.ToString(put.ETag) != etag || aws.ToString(put.ChecksumCRC32) == "" {
		t.Errorf("ETag %s (want %s), CRC32 %q", aws.ToString(put.ETag), etag, aws.ToString(put.ChecksumCRC32))
	}
	got, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(b, data) || aws.ToString(got.ETag) != etag {
		t.Fatalf("read back %d bytes (%v), equal %v, ETag %s", len(b), err, bytes.Equal(b, data), aws.ToString(got.ETag))
	}
}

// TestSignedChunkedPut: a PutObject whose body is sent in signed chunks
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, as other SDKs and tools send it),
// each chunk signed from the request's signature on: stored when every
// chunk signature holds, refused (SignatureDoesNotMatch) with nothing left
// behind when one byte of a chunk changed.
func TestSignedChunkedPut(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	chunks := [][]byte{bytes.Repeat([]byte("a"), 8192), bytes.Repeat([]byte("b"), 100), nil}
	put := func(key string, tamper bool) (int, string) {
		encLen := 0
		for _, c := range chunks {
			encLen += len(strconv.FormatInt(int64(len(c)), 16)) + len(";chunk-signature=") + 64 + 2 + len(c) + 2
		}
		req, _ := http.NewRequest("PUT", f.App.URL(app.Objects)+"/"+bucket+"/"+strings.ReplaceAll(key, ":", "%3A"), nil)
		req.ContentLength = int64(encLen)
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
		req.Header.Set("X-Amz-Decoded-Content-Length", "8292")
		signV4(t, req, alice)
		seed := req.Header.Get("Authorization")[strings.LastIndex(req.Header.Get("Authorization"), "Signature=")+len("Signature="):]
		amzDate := req.Header.Get("X-Amz-Date")
		key4 := sigv4.SigningKey(alice.secret, amzDate[:8], "us-east-1", "s3")
		scope := amzDate[:8] + "/us-east-1/s3/aws4_request"
		hexSum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
		var body bytes.Buffer
		prev := seed
		for i, c := range chunks {
			m := hmac.New(sha256.New, key4)
			m.Write([]byte("AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + hexSum(nil) + "\n" + hexSum(c)))
			prev = hex.EncodeToString(m.Sum(nil))
			sent := c
			if tamper && i == 1 {
				sent = bytes.Repeat([]byte("c"), len(c))
			}
			fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n%s\r\n", len(c), prev, sent)
		}
		if body.Len() != encLen {
			t.Fatalf("encoded %d bytes, announced %d", body.Len(), encLen)
		}
		req.Body = io.NopCloser(&body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	prefix := "private/" + alice.id + "/"
	if code, body := put(prefix+"signed-chunks", false); code != 200 {
		t.Fatalf("signed chunks: %d %s", code, body)
	}
	cl := f.client(alice.ak, alice.secret, alice.token, true)
	out, err := cl.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "signed-chunks")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != strings.Repeat("a", 8192)+strings.Repeat("b", 100) {
		t.Fatalf("read back %d bytes", len(got))
	}
	if code, body := put(prefix+"tampered-chunks", true); code != 403 || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") {
		t.Fatalf("a tampered chunk: %d %s", code, body)
	}
	if _, err := cl.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "tampered-chunks")}); err == nil {
		t.Fatal("a refused upload left an object")
	}
}

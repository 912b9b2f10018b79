package sigv4_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/sigv4"
)

// The example of AWS's "Signature Calculations for the Authorization
// Header: Transferring Payload in Multiple Chunks" (S3 API reference):
// 66,560 bytes of 'a' in chunks of 64 KiB, 1 KiB and the final empty one.
const (
	docKey    = "AKIAIOSFODNN7EXAMPLE"
	docSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	docSeed   = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	docSig1   = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
	docSig2   = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
	docSig3   = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
)

func docBody() string {
	return "10000;chunk-signature=" + docSig1 + "\r\n" + strings.Repeat("a", 65536) + "\r\n" +
		"400;chunk-signature=" + docSig2 + "\r\n" + strings.Repeat("a", 1024) + "\r\n" +
		"0;chunk-signature=" + docSig3 + "\r\n\r\n"
}

func docRequest(t *testing.T, body string) (*http.Request, sigv4.Result) {
	t.Helper()
	r, _ := http.NewRequest("PUT", "http://s3.amazonaws.com/examplebucket/chunkObject.txt", strings.NewReader(body))
	r.Host = "s3.amazonaws.com"
	r.ContentLength = 66824
	r.Header.Set("Content-Length", "66824")
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.Header.Set("X-Amz-Content-Sha256", sigv4.StreamingSigned)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+docKey+"/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature="+docSeed)
	v := &sigv4.Verifier{Service: "s3", S3: true, Regions: []string{"us-east-1"},
		Source: source{docKey: {AccessKeyID: docKey, Secret: docSecret}},
		Now:    func() time.Time { return time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC) }}
	res, err := v.Verify(r)
	if err != nil {
		t.Fatalf("the documented seed signature is refused: %v", err)
	}
	return r, res
}

func decode(t *testing.T, r *http.Request, res sigv4.Result, mode string, declared ...string) ([]byte, *sigv4.ChunkedReader, error) {
	t.Helper()
	c, err := sigv4.NewChunkedReader(r.Body, res, mode, declared)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	return b, c, err
}

func TestChunkedSignedDocumentedExample(t *testing.T) {
	r, res := docRequest(t, docBody())
	got, _, err := decode(t, r, res, sigv4.StreamingSigned)
	if err != nil {
		t.Fatalf("documented chunks refused: %v", err)
	}
	if string(got) != strings.Repeat("a", 66560) {
		t.Fatalf("decoded %d bytes, not the 66560 'a's", len(got))
	}
}

func TestChunkedSignedTampering(t *testing.T) {
	body := docBody()
	cases := map[string]struct {
		body string
		code string
	}{
		"one payload byte changed": {strings.Replace(body, "aaaa", "aaab", 1), "SignatureDoesNotMatch"},
		"chunk signature altered":  {strings.Replace(body, docSig2, docSig1, 1), "SignatureDoesNotMatch"},
		"final chunk dropped":      {body[:strings.Index(body, "0;chunk")], "IncompleteBody"},
		"second chunk dropped": {"10000;chunk-signature=" + docSig1 + "\r\n" + strings.Repeat("a", 65536) + "\r\n" +
			"0;chunk-signature=" + docSig3 + "\r\n\r\n", "SignatureDoesNotMatch"},
		"chunk without signature":  {strings.Replace(body, "400;chunk-signature="+docSig2, "400", 1), "SignatureDoesNotMatch"},
		"truncated inside a chunk": {body[:1000], "IncompleteBody"},
		"size not hex":             {strings.Replace(body, "400;", "4z0;", 1), "InvalidChunkSizeError"},
		"chunk longer than its size": {strings.Replace(body, "400;chunk-signature="+docSig2+"\r\n", "3ff;chunk-signature="+docSig2+"\r\n", 1),
			"IncompleteBody"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r, res := docRequest(t, c.body)
			_, _, err := decode(t, r, res, sigv4.StreamingSigned)
			if !isCode(err, c.code) {
				t.Fatalf("got %v, want %s", err, c.code)
			}
		})
	}
}

// The bytes aws-sdk-go-v2 sends for "hello world" with a CRC32 trailer.
func TestChunkedUnsignedTrailer(t *testing.T) {
	r, res := docRequest(t, "")
	for name, c := range map[string]struct {
		body, code string
		declared   []string
	}{
		"sdk bytes":            {"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", "", []string{"x-amz-checksum-crc32"}},
		"two chunks":           {"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", "", []string{"X-Amz-Checksum-Crc32"}},
		"undeclared trailer":   {"b\r\nhello world\r\n0\r\nx-amz-checksum-sha256:abc=\r\n\r\n", "MalformedTrailerError", []string{"x-amz-checksum-crc32"}},
		"declared but missing": {"b\r\nhello world\r\n0\r\n\r\n", "MalformedTrailerError", []string{"x-amz-checksum-crc32"}},
		"trailer cut off":      {"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUo", "MalformedTrailerError", []string{"x-amz-checksum-crc32"}},
	} {
		t.Run(name, func(t *testing.T) {
			r.Body = io.NopCloser(strings.NewReader(c.body))
			got, cr, err := decode(t, r, res, sigv4.StreamingUnsignedTrailer, c.declared...)
			if c.code != "" {
				if !isCode(err, c.code) {
					t.Fatalf("got %v, want %s", err, c.code)
				}
				return
			}
			if err != nil || string(got) != "hello world" || cr.Trailer().Get("x-amz-checksum-crc32") != "DUoRhQ==" {
				t.Fatalf("got %q, trailer %v, err %v", got, cr.Trailer(), err)
			}
		})
	}
}

// A signed body with a signed trailer, built as the specification says
// (chunk signatures chained from the seed, then the trailer signature over
// the canonical trailer lines).
func TestChunkedSignedTrailer(t *testing.T) {
	key := sigv4.SigningKey(docSecret, "20130524", "us-east-1", "s3")
	scope := "20130524/us-east-1/s3/aws4_request"
	mac := func(s string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))
	}
	hashHex := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	empty := hashHex(nil)
	build := func(trailer string) string {
		prev := docSeed
		var b bytes.Buffer
		for _, chunk := range []string{"hello", " world", ""} {
			sig := mac("AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n" + scope + "\n" + prev + "\n" + empty + "\n" + hashHex([]byte(chunk)))
			b.WriteString(strings.ToLower(hex.EncodeToString([]byte{byte(len(chunk))})[1:]) + ";chunk-signature=" + sig + "\r\n")
			if chunk != "" {
				b.WriteString(chunk + "\r\n")
			}
			prev = sig
		}
		tsig := mac("AWS4-HMAC-SHA256-TRAILER\n20130524T000000Z\n" + scope + "\n" + prev + "\n" + hashHex([]byte("x-amz-checksum-crc32:DUoRhQ==\n")))
		b.WriteString(trailer + "\r\nx-amz-trailer-signature:" + tsig + "\r\n\r\n")
		return b.String()
	}
	r, res := docRequest(t, "")
	r.Body = io.NopCloser(strings.NewReader(build("x-amz-checksum-crc32:DUoRhQ==")))
	got, cr, err := decode(t, r, res, sigv4.StreamingSignedTrailer, "x-amz-checksum-crc32")
	if err != nil || string(got) != "hello world" || cr.Trailer().Get("x-amz-checksum-crc32") != "DUoRhQ==" {
		t.Fatalf("got %q, trailer %v, err %v", got, cr.Trailer(), err)
	}
	r.Body = io.NopCloser(strings.NewReader(build("x-amz-checksum-crc32:AAAAAA==")))
	if _, _, err := decode(t, r, res, sigv4.StreamingSignedTrailer, "x-amz-checksum-crc32"); !isCode(err, "SignatureDoesNotMatch") {
		t.Fatalf("altered trailer: %v", err)
	}
}

// FuzzChunked: no input makes the decoder panic, loop, or return more
// bytes than the chunk sizes it accepted.
func FuzzChunked(f *testing.F) {
	f.Add([]byte("b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"))
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("ffffffff\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := sigv4.NewChunkedReader(bytes.NewReader(body), sigv4.Result{}, sigv4.StreamingUnsignedTrailer, []string{"x-amz-checksum-crc32"})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(c)
		if len(got) > len(body) {
			t.Fatalf("decoded %d bytes from %d", len(got), len(body))
		}
	})
}

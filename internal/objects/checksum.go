package objects

import (
	"crypto/md5"
	"errors"
	"strconv"

	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"github.com/writ-id/writ/internal/sigv4"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strings"
)

// checksumAlgs are the x-amz-checksum-<alg> algorithms S3 accepts, by the
// lower-case name used in headers; checksumNames are their API spellings.
var (
	checksumAlgs  = []string{"crc32", "crc32c", "crc64nvme", "sha1", "sha256"}
	checksumNames = map[string]string{"crc32": "CRC32", "crc32c": "CRC32C", "crc64nvme": "CRC64NVME", "sha1": "SHA1", "sha256": "SHA256"}
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// The NVMe polynomial, bit-reversed as crc64.MakeTable wants it (as the
	// AWS SDKs compute it).
	crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)
)

// newChecksum returns a fresh hash for alg, or nil for an unknown one.
func newChecksum(alg string) hash.Hash {
	switch alg {
	case "crc32":
		return crc32.NewIEEE()
	case "crc32c":
		return crc32.New(castagnoli)
	case "crc64nvme":
		return crc64.New(crc64NVME)
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	}
	return nil
}

// checksumAlg parses an x-amz-checksum-algorithm / x-amz-sdk-checksum-algorithm
// value ("CRC32", "crc32c", ...) to its lower-case name; "" stays "".
func checksumAlg(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	a := strings.ToLower(v)
	if newChecksum(a) == nil {
		return "", s3err(http.StatusBadRequest, "InvalidRequest", "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
	}
	return a, nil
}

// requestChecksum returns the one x-amz-checksum-<alg> header of r, if any,
// after checking that its value is base64 of a digest of the right size.
func requestChecksum(r *http.Request) (alg, value string, err error) {
	for _, a := range checksumAlgs {
		v := r.Header.Get("X-Amz-Checksum-" + a)
		if v == "" {
			continue
		}
		if alg != "" {
			return "", "", s3err(http.StatusBadRequest, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		b, derr := base64.StdEncoding.DecodeString(v)
		if derr != nil || len(b) != newChecksum(a).Size() {
			return "", "", s3err(http.StatusBadRequest, "InvalidRequest", "Value for x-amz-checksum-"+a+" header is invalid.")
		}
		alg, value = a, v
	}
	return alg, value, nil
}

// digests checks a request body against every digest its headers announce:
// x-amz-content-sha256 (when it is a hash, not a sentinel), Content-MD5 and
// one x-amz-checksum-<alg>. It always computes the body's MD5 (the ETag)
// and, when asked, one more algorithm (a multipart upload's declared one).
type digests struct {
	md5, sha256, sum, extra hash.Hash
	shaWant, md5Want        string
	alg, sumWant, extraAlg  string
	n                       int64

	// An aws-chunked body: its decoder, the length it must decode to, and
	// the checksum algorithm its trailer carries ("" for none).
	chunked    *sigv4.ChunkedReader
	decodedLen int64
	trailerAlg string
}

// hasChunkedEncoding reports whether r's Content-Encoding lists aws-chunked.
func hasChunkedEncoding(r *http.Request) bool {
	for _, v := range r.Header.Values("Content-Encoding") {
		for _, e := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(e), "aws-chunked") {
				return true
			}
		}
	}
	return false
}

// decodeChunked replaces r's body with the decoder of its aws-chunked
// payload (mode is the x-amz-content-sha256 value).
func (d *digests) decodeChunked(r *http.Request, mode string) error {
	if !sigv4.IsStreaming(mode) {
		return s3err(http.StatusBadRequest, "InvalidArgument", "Content-Encoding aws-chunked needs a STREAMING-… x-amz-content-sha256")
	}
	n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || n < 0 {
		return s3err(http.StatusLengthRequired, "MissingContentLength", "You must provide the x-amz-decoded-content-length HTTP header.")
	}
	var declared []string
	for _, v := range r.Header.Values("X-Amz-Trailer") {
		for _, t := range strings.Split(v, ",") {
			t = strings.ToLower(strings.TrimSpace(t))
			if t == "" {
				continue
			}
			alg, ok := strings.CutPrefix(t, "x-amz-checksum-")
			if !ok || newChecksum(alg) == nil || d.trailerAlg != "" {
				return s3err(http.StatusBadRequest, "InvalidRequest", "The value specified in the x-amz-trailer header is not supported")
			}
			d.trailerAlg = alg
			declared = append(declared, t)
		}
	}
	if d.trailerAlg == "" && strings.HasSuffix(mode, "-TRAILER") {
		return s3err(http.StatusBadRequest, "InvalidRequest", "A trailing payload mode needs an x-amz-trailer header")
	}
	res, _ := r.Context().Value(verifiedKey{}).(sigv4.Result)
	c, err := sigv4.NewChunkedReader(r.Body, res, mode, declared)
	if err != nil {
		return chunkedError(err)
	}
	d.chunked, d.decodedLen = c, n
	r.Body = io.NopCloser(chunkedBody{c})
	r.ContentLength = n
	return nil
}

// chunkedBody reports decoding errors as S3 errors.
type chunkedBody struct{ c *sigv4.ChunkedReader }

func (b chunkedBody) Read(p []byte) (int, error) {
	n, err := b.c.Read(p)
	if err != nil && err != io.EOF {
		err = chunkedError(err)
	}
	return n, err
}

// verifiedKey carries a request's verified signature (sigv4.Result) in its
// context, for the chunk signatures of an aws-chunked body.
type verifiedKey struct{}

// chunkedError maps an aws-chunked decoding error to S3's.
func chunkedError(err error) error {
	var e *sigv4.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case "SignatureDoesNotMatch":
		return s3err(http.StatusForbidden, e.Code, "The request signature we calculated does not match the signature you provided.")
	case "NotImplemented":
		return s3err(http.StatusNotImplemented, e.Code, e.Message)
	}
	return s3err(http.StatusBadRequest, e.Code, e.Message)
}

// newDigests reads the digest headers of r; x-amz-checksum-* only when
// bodyChecksum (on CompleteMultipartUpload it is the object's, not the
// body's). An aws-chunked body is decoded here: r.Body becomes the decoded
// payload (chunk signatures checked as it is read), r.ContentLength its
// declared decoded length, and a checksum may arrive in the trailer.
func newDigests(r *http.Request, extraAlg string, bodyChecksum bool) (*digests, error) {
	d := &digests{md5: md5.New(), extraAlg: extraAlg}
	sha := r.Header.Get("X-Amz-Content-Sha256")
	if sigv4.IsStreaming(sha) || hasChunkedEncoding(r) {
		if err := d.decodeChunked(r, sha); err != nil {
			return nil, err
		}
	}
	if len(sha) == 64 {
		if _, err := hex.DecodeString(sha); err != nil {
			return nil, s3err(http.StatusBadRequest, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a valid sha256 value.")
		}
		d.sha256, d.shaWant = sha256.New(), strings.ToLower(sha)
	}
	if v := r.Header.Get("Content-MD5"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != md5.Size {
			return nil, s3err(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
		}
		d.md5Want = v
	}
	if bodyChecksum {
		alg, v, err := requestChecksum(r)
		if err != nil {
			return nil, err
		}
		if alg != "" && d.trailerAlg != "" {
			return nil, s3err(http.StatusBadRequest, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		if alg != "" {
			d.alg, d.sumWant, d.sum = alg, v, newChecksum(alg)
		}
		if d.trailerAlg != "" {
			d.alg, d.sum = d.trailerAlg, newChecksum(d.trailerAlg)
		}
	}
	if extraAlg != "" {
		d.extra = newChecksum(extraAlg)
	}
	return d, nil
}

// wrap returns body read through every digest.
func (d *digests) wrap(body io.Reader) io.Reader {
	ws := []io.Writer{d.md5, countWriter{&d.n}}
	for _, h := range []hash.Hash{d.sha256, d.sum, d.extra} {
		if h != nil {
			ws = append(ws, h)
		}
	}
	return io.TeeReader(body, io.MultiWriter(ws...))
}

type countWriter struct{ n *int64 }

func (c countWriter) Write(p []byte) (int, error) { *c.n += int64(len(p)); return len(p), nil }

// check compares what was read with what the headers (and an aws-chunked
// body's trailer) announced.
func (d *digests) check() error {
	if d.chunked != nil {
		// The whole encoded body must have been read and be well formed.
		if _, err := d.chunked.Read(make([]byte, 1)); err != io.EOF {
			if err == nil {
				return s3err(http.StatusBadRequest, "IncompleteBody", "The request body is longer than x-amz-decoded-content-length")
			}
			return chunkedError(err)
		}
		if d.chunked.Decoded() != d.decodedLen {
			return s3err(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header")
		}
		if d.trailerAlg != "" && d.sum != nil && d.alg == d.trailerAlg {
			d.sumWant = d.chunked.Trailer().Get("x-amz-checksum-" + d.trailerAlg)
		}
	}
	if d.sha256 != nil && hex.EncodeToString(d.sha256.Sum(nil)) != d.shaWant {
		return s3err(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if d.md5Want != "" && base64.StdEncoding.EncodeToString(d.md5.Sum(nil)) != d.md5Want {
		return s3err(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
	}
	if d.sum != nil && base64.StdEncoding.EncodeToString(d.sum.Sum(nil)) != d.sumWant {
		return s3err(http.StatusBadRequest, "BadDigest", "The "+checksumNames[d.alg]+" you specified did not match the calculated checksum.")
	}
	return nil
}

// etag is the quoted hex MD5 of what was read.
func (d *digests) etag() string { return `"` + hex.EncodeToString(d.md5.Sum(nil)) + `"` }

// extraSum is the base64 digest of the extra algorithm ("" without one).
func (d *digests) extraSum() string {
	if d.extra == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(d.extra.Sum(nil))
}

// readSmall reads a small request body (an XML document) whole, refusing
// one over limit bytes with tooBig, and checks its digests.
func readSmall(r *http.Request, limit int64, tooBig *s3Error, bodyChecksum bool) ([]byte, error) {
	d, err := newDigests(r, "", bodyChecksum)
	if err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return nil, tooBig
	}
	b, err := io.ReadAll(d.wrap(io.LimitReader(r.Body, limit+1)))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooBig
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	return b, nil
}

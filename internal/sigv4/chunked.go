package sigv4

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The x-amz-content-sha256 values of S3's aws-chunked payload modes.
const (
	StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	StreamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
)

// IsStreaming reports whether mode (an x-amz-content-sha256 value) names
// an aws-chunked body.
func IsStreaming(mode string) bool { return strings.HasPrefix(mode, "STREAMING-") }

const (
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// maxLine bounds a chunk header or trailer line.
	maxLine = 4096
	// maxTrailer bounds the trailer section.
	maxTrailer = 16 << 10
)

// ChunkedReader decodes an aws-chunked body, checking every chunk
// signature (and the trailer signature) of the signed modes as it goes.
// Data of a chunk is returned before its signature is checked: a caller
// must treat what it read as unverified until Read has returned io.EOF.
// Errors are *Error with S3's codes (IncompleteBody,
// SignatureDoesNotMatch, MalformedTrailerError, InvalidChunkSizeError).
type ChunkedReader struct {
	r        *bufio.Reader
	res      Result
	signed   bool
	trailer  bool
	declared []string

	prev      string    // previous signature in the chain
	chunkSig  string    // signature the current chunk claims
	sum       hash.Hash // SHA-256 of the current chunk (signed modes)
	remaining int64     // bytes left in the current chunk
	inChunk   bool
	done      bool
	err       error
	trailers  http.Header
	decoded   int64
}

// NewChunkedReader decodes body sent in mode for the verified request res.
// declared lists the trailer names the request announced in X-Amz-Trailer;
// no other trailer is accepted.
func NewChunkedReader(body io.Reader, res Result, mode string, declared []string) (*ChunkedReader, error) {
	c := &ChunkedReader{r: bufio.NewReaderSize(body, 64<<10), res: res, prev: res.seed, trailers: http.Header{}}
	switch mode {
	case StreamingUnsignedTrailer:
		c.trailer = true
	case StreamingSigned:
		c.signed = true
	case StreamingSignedTrailer:
		c.signed, c.trailer = true, true
	default:
		return nil, fail("NotImplemented", "payload mode %s is not supported", mode)
	}
	if c.signed && (res.Presigned || res.seed == "") {
		return nil, fail("InvalidRequest", "signed aws-chunked bodies need a header-signed request")
	}
	for _, d := range declared {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			c.declared = append(c.declared, d)
		}
	}
	if c.signed {
		c.sum = sha256.New()
	}
	return c, nil
}

// Trailer returns the trailing headers; complete once Read returned io.EOF.
func (c *ChunkedReader) Trailer() http.Header { return c.trailers }

// Decoded returns how many payload bytes have been read.
func (c *ChunkedReader) Decoded() int64 { return c.decoded }

func (c *ChunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for !c.inChunk {
		if c.done {
			return 0, io.EOF
		}
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.r.Read(p)
	c.remaining -= int64(n)
	c.decoded += int64(n)
	if c.sum != nil {
		c.sum.Write(p[:n])
	}
	if err != nil && !(errors.Is(err, io.EOF) && c.remaining == 0) {
		c.err = fail("IncompleteBody", "the body ended inside a chunk")
		return n, c.err
	}
	if c.remaining == 0 {
		if err := c.endChunk(); err != nil {
			c.err = err
			return n, err
		}
	}
	return n, nil
}

func (c *ChunkedReader) line() (string, error) {
	var b []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxLine {
			return "", fail("IncompleteBody", "a chunk header line is too long")
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return "", fail("IncompleteBody", "the body ended before its last chunk")
	}
	s := string(b)
	if !strings.HasSuffix(s, "\r\n") {
		return "", fail("IncompleteBody", "a chunk line does not end in CRLF")
	}
	return s[:len(s)-2], nil
}

// next reads a chunk header; the last (zero-length) chunk also ends the
// body, with its trailer.
func (c *ChunkedReader) next() error {
	l, err := c.line()
	if err != nil {
		return err
	}
	size, ext, _ := strings.Cut(l, ";")
	n, err := strconv.ParseInt(size, 16, 64)
	if err != nil || n < 0 || n > 1<<30 || size == "" || len(size) > 16 {
		return fail("InvalidChunkSizeError", "malformed chunk size")
	}
	c.chunkSig = ""
	if c.signed {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !ok || len(sig) != 64 {
			return fail("SignatureDoesNotMatch", "a chunk lacks its chunk-signature")
		}
		c.chunkSig = sig
	}
	if n > 0 {
		c.remaining, c.inChunk = n, true
		return nil
	}
	// The final chunk.
	if c.signed {
		if err := c.verifyChunk(emptySHA256); err != nil {
			return err
		}
	}
	if c.trailer {
		if err := c.readTrailer(); err != nil {
			return err
		}
	} else {
		if l, err := c.line(); err != nil || l != "" {
			return fail("IncompleteBody", "the final chunk must end with an empty line")
		}
	}
	c.done = true
	return nil
}

func (c *ChunkedReader) endChunk() error {
	c.inChunk = false
	if l, err := c.line(); err != nil || l != "" {
		return fail("IncompleteBody", "a chunk is longer than its size says")
	}
	if c.signed {
		sum := hex.EncodeToString(c.sum.Sum(nil))
		c.sum.Reset()
		return c.verifyChunk(sum)
	}
	return nil
}

func (c *ChunkedReader) sign(sts string) string {
	return hex.EncodeToString(hmacSHA256(c.res.key, []byte(sts)))
}

func (c *ChunkedReader) verifyChunk(dataHash string) error {
	want := c.sign("AWS4-HMAC-SHA256-PAYLOAD\n" + c.res.Time.UTC().Format(timeFormat) + "\n" + c.res.scope + "\n" +
		c.prev + "\n" + emptySHA256 + "\n" + dataHash)
	if !hmac.Equal([]byte(want), []byte(c.chunkSig)) {
		return fail("SignatureDoesNotMatch", "a chunk signature does not match")
	}
	c.prev = want
	return nil
}

func (c *ChunkedReader) readTrailer() error {
	var canon strings.Builder
	sig := ""
	total := 0
	for {
		l, err := c.line()
		if err != nil {
			return fail("MalformedTrailerError", "the trailer is incomplete")
		}
		total += len(l) + 2
		if total > maxTrailer {
			return fail("MalformedTrailerError", "the trailer is too large")
		}
		if l == "" {
			break
		}
		name, val, ok := strings.Cut(l, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		val = strings.TrimSpace(val)
		if !ok || name == "" {
			return fail("MalformedTrailerError", "malformed trailer line")
		}
		if name == "x-amz-trailer-signature" {
			if !c.signed || sig != "" {
				return fail("MalformedTrailerError", "unexpected trailer signature")
			}
			sig = val
			continue
		}
		if sig != "" {
			return fail("MalformedTrailerError", "a trailer follows the trailer signature")
		}
		if !contains(c.declared, name) {
			return fail("MalformedTrailerError", "trailer %q was not declared in X-Amz-Trailer", name)
		}
		c.trailers.Add(name, val)
		canon.WriteString(name + ":" + val + "\n")
	}
	if c.signed {
		sum := sha256.Sum256([]byte(canon.String()))
		want := c.sign("AWS4-HMAC-SHA256-TRAILER\n" + c.res.Time.UTC().Format(timeFormat) + "\n" + c.res.scope + "\n" +
			c.prev + "\n" + hex.EncodeToString(sum[:]))
		if !hmac.Equal([]byte(want), []byte(sig)) {
			return fail("SignatureDoesNotMatch", "the trailer signature does not match")
		}
	}
	for _, d := range c.declared {
		if c.trailers.Get(d) == "" {
			return fail("MalformedTrailerError", "declared trailer %q is missing", d)
		}
	}
	return nil
}

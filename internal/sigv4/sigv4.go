// Package sigv4 verifies AWS Signature Version 4 requests (Authorization
// header and presigned query forms), as AWS services do: the canonical
// request is rebuilt from exactly the headers the client signed, the
// signing key derived from the secret the caller's credential source
// returns, and signatures compared in constant time. It knows nothing of
// IAM or the store: a CredentialSource resolves access keys.
package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	timeFormat      = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// MaxSkew is how far a header-signed request's time may be from now.
	MaxSkew = 15 * time.Minute
)

// Credentials are what a CredentialSource knows of an access key.
type Credentials struct {
	AccessKeyID string
	Secret      string
	// SessionToken is the token temporary credentials must present ("" for
	// long-term keys).
	SessionToken string
	// Principal is opaque to this package: whatever the source attaches.
	Principal any
}

// CredentialSource resolves an access key (and, for temporary credentials,
// the session token presented with it). It returns an *Error with code
// InvalidAccessKeyId, InvalidToken or ExpiredToken when it cannot.
type CredentialSource interface {
	Lookup(ctx context.Context, accessKeyID, sessionToken string) (Credentials, error)
}

// Error is a verification failure with an AWS error code. The message never
// contains a secret. Besides the code, it says what Verify had read of the
// request when it failed, so that a service wording its own answers (S3's
// region in <Region>, its message per presigned parameter) need not parse
// the request again, differently.
type Error struct {
	Code    string
	Message string
	// Presigned reports a presigned request (the X-Amz-* query
	// parameters) rather than one signed in the Authorization header.
	Presigned bool
	// Scope is the request's credential scope once it has parsed; nil when
	// verification failed before that, or on a malformed one.
	Scope *Scope
	// Param is, in an AuthorizationQueryParametersError, the presigned
	// query parameter at fault: X-Amz-Algorithm, X-Amz-Credential,
	// X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders or X-Amz-Signature.
	Param string
}

// Scope is a credential scope,
// <AccessKeyID>/<Date>/<Region>/<Service>/aws4_request: whose key signed,
// and for which day, region and service it was derived.
type Scope struct {
	AccessKeyID string
	Date        string // yyyymmdd
	Region      string
	Service     string
}

func (e *Error) Error() string { return "sigv4: " + e.Code + ": " + e.Message }

func fail(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Verifier checks requests for one service.
type Verifier struct {
	// Service is the signing name (sts, s3, cognito-idp …).
	Service string
	// Regions accepted in the credential scope.
	Regions []string
	Source  CredentialSource
	// S3 selects S3's canonicalization (no path normalization or double
	// encoding; payload hash from X-Amz-Content-Sha256, which a
	// header-signed request must carry: InvalidRequest without it).
	S3 bool
	// MaxBody bounds a body read to hash it (non-S3); default 1 MiB.
	MaxBody int64
	Now     func() time.Time
	// DefaultPresignExpiry, when not 0, is how long a presigned request
	// without X-Amz-Expires is valid from its X-Amz-Date; 0 requires the
	// parameter. One that is present must still be 1 to 604800.
	DefaultPresignExpiry time.Duration

	// keys caches derived signing keys by access key and scope (with the
	// secret they were derived from): four HMACs saved per request.
	mu   sync.Mutex
	keys map[string]signingKey
}

type signingKey struct {
	secret string
	key    []byte
}

// maxCachedKeys bounds the signing-key cache; when full it starts over.
const maxCachedKeys = 4096

// signingKey returns SigningKey(secret, date, region, service), cached.
func (v *Verifier) signingKey(accessKey, secret, date, region, service string) []byte {
	id := accessKey + "/" + date + "/" + region + "/" + service
	v.mu.Lock()
	k, ok := v.keys[id]
	v.mu.Unlock()
	if ok && k.secret == secret {
		return k.key
	}
	key := SigningKey(secret, date, region, service)
	v.mu.Lock()
	if v.keys == nil || len(v.keys) >= maxCachedKeys {
		v.keys = make(map[string]signingKey)
	}
	v.keys[id] = signingKey{secret: secret, key: key}
	v.mu.Unlock()
	return key
}

// Result is a verified request's credentials.
type Result struct {
	Credentials Credentials
	Presigned   bool
	Time        time.Time
	// SignedHeaders are the names of the headers the signature covers, as
	// the request listed them ("host" among them; SigV4 lists them
	// lower-case).
	SignedHeaders []string

	// What an aws-chunked body's chunk signatures chain from.
	seed  string
	key   []byte
	scope string
}

type parsed struct {
	// scope stays zero until the credential is well-formed (its access
	// key is never empty then).
	scope         Scope
	signedHeaders []string
	signature     string
	amzDate       time.Time
	expires       time.Duration
	token         string
	presigned     bool
	// query is the request's query, parsed once for both the presigned
	// parameters and the canonical request.
	query url.Values
}

// Verify checks r. Missing authentication gives code
// MissingAuthenticationToken; the body, when read, is restored for the
// handler. Every error is an *Error.
func (v *Verifier) Verify(r *http.Request) (Result, error) {
	p, err := parse(r, v.DefaultPresignExpiry)
	if err == nil {
		var res Result
		if res, err = v.verify(r, p); err == nil {
			return res, nil
		}
	}
	return Result{}, p.annotate(err)
}

// annotate is err with what p knows of the request: whether it is
// presigned, and its scope once parsed. A CredentialSource's *Error is
// copied rather than changed: the source may return a shared value.
func (p *parsed) annotate(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Presigned = p.presigned
	if p.scope != (Scope{}) {
		s := p.scope
		c.Scope = &s
	}
	return &c
}

// verify checks the request p was parsed from.
func (v *Verifier) verify(r *http.Request, p parsed) (Result, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if p.scope.Service != v.Service {
		return Result{}, fail("AuthorizationHeaderMalformed", "credential scope service %q; expected %q", p.scope.Service, v.Service)
	}
	if !contains(v.Regions, p.scope.Region) {
		return Result{}, fail("AuthorizationHeaderMalformed", "credential scope region %q is not served here", p.scope.Region)
	}
	if p.amzDate.Format("20060102") != p.scope.Date {
		return Result{}, fail("AuthorizationHeaderMalformed", "credential scope date does not match the request date")
	}
	t := now()
	if p.presigned {
		if t.After(p.amzDate.Add(p.expires)) {
			return Result{}, fail("AccessDenied", "Request has expired")
		}
		if p.amzDate.After(t.Add(MaxSkew)) {
			return Result{}, fail("AccessDenied", "Request is not valid yet")
		}
	} else if d := t.Sub(p.amzDate); d > MaxSkew || d < -MaxSkew {
		return Result{}, fail("RequestTimeTooSkewed", "The difference between the request time and the server's time is too large")
	}
	if !contains(p.signedHeaders, "host") {
		return Result{}, fail("AuthorizationHeaderMalformed", "the host header must be signed")
	}
	creds, err := v.Source.Lookup(r.Context(), p.scope.AccessKeyID, p.token)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return Result{}, e
		}
		return Result{}, fail("InternalFailure", "credential lookup failed")
	}
	if creds.SessionToken != "" && !hmac.Equal([]byte(creds.SessionToken), []byte(p.token)) {
		return Result{}, fail("InvalidToken", "The security token included in the request is invalid")
	}
	payload, err := v.payloadHash(r, p)
	if err != nil {
		return Result{}, err
	}
	scope := p.scope.Date + "/" + p.scope.Region + "/" + p.scope.Service + "/aws4_request"
	bp := bufPool.Get().(*[]byte)
	b := appendCanonicalRequest((*bp)[:0], r, p, payload, !v.S3)
	sum := sha256.Sum256(b)
	// The string to sign, in the same buffer.
	b = append(b[:0], algorithm+"\n"...)
	b = p.amzDate.AppendFormat(b, timeFormat)
	b = append(b, '\n')
	b = append(b, scope...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, sum[:])
	key := v.signingKey(p.scope.AccessKeyID, creds.Secret, p.scope.Date, p.scope.Region, p.scope.Service)
	mac := hmacSHA256(key, b)
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
	want := hex.EncodeToString(mac)
	if !hmac.Equal([]byte(want), []byte(p.signature)) {
		return Result{}, fail("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided")
	}
	return Result{Credentials: creds, Presigned: p.presigned, Time: p.amzDate, SignedHeaders: p.signedHeaders, seed: want, key: key, scope: scope}, nil
}

// validPayloadHash reports whether h is a value x-amz-content-sha256 may
// take: UNSIGNED-PAYLOAD, a streaming mode, or 64 hex digits (which the
// handler then checks against the body).
func validPayloadHash(h string) bool {
	if h == unsignedPayload || IsStreaming(h) {
		return true
	}
	if len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func (v *Verifier) payloadHash(r *http.Request, p parsed) (string, error) {
	if p.presigned && v.S3 {
		return unsignedPayload, nil
	}
	// Only S3 takes a payload hash the request states (UNSIGNED-PAYLOAD
	// included): any other service hashes the body itself, so that the
	// signature always covers it.
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && v.S3 {
		if !validPayloadHash(h) {
			return "", fail("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a SHA-256 in hex")
		}
		return h, nil
	}
	if v.S3 {
		// S3 never hashes the body itself: a header-signed request states
		// its payload hash (or mode), whatever its size.
		return "", fail("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	}
	max := v.MaxBody
	if max == 0 {
		max = 1 << 20
	}
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		if err != nil {
			return "", fail("IncompleteSignature", "the request body could not be read")
		}
		if int64(len(b)) > max {
			return "", fail("RequestEntityTooLarge", "the request body is too large")
		}
		r.Body.Close()
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), nil
}

func parse(r *http.Request, defaultExpiry time.Duration) (parsed, error) {
	var p parsed
	auth := r.Header.Get("Authorization")
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "" {
		if auth != "" {
			return p, fail("InvalidArgument", "Only one auth mechanism allowed")
		}
		return parseQuery(q, defaultExpiry)
	}
	p.query = q
	if auth == "" {
		return p, fail("MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(auth, algorithm+" ")
	if !ok {
		return p, fail("IncompleteSignature", "unsupported authorization algorithm")
	}
	var credential, signed string
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, fail("IncompleteSignature", "malformed Authorization header")
		}
		switch k {
		case "Credential":
			credential = val
		case "SignedHeaders":
			signed = val
		case "Signature":
			p.signature = val
		}
	}
	if err := p.credential(credential); err != nil {
		return p, err
	}
	p.signedHeaders = strings.Split(signed, ";")
	if signed == "" || len(p.signature) != 64 {
		return p, fail("IncompleteSignature", "Authorization header requires Credential, SignedHeaders and Signature")
	}
	ds := r.Header.Get("X-Amz-Date")
	var err error
	if ds != "" {
		p.amzDate, err = time.Parse(timeFormat, ds)
	} else if d := r.Header.Get("Date"); d != "" {
		p.amzDate, err = http.ParseTime(d)
	} else {
		return p, fail("IncompleteSignature", "X-Amz-Date or Date is required")
	}
	if err != nil {
		return p, fail("IncompleteSignature", "malformed X-Amz-Date")
	}
	p.token = r.Header.Get("X-Amz-Security-Token")
	return p, nil
}

func parseQuery(q url.Values, defaultExpiry time.Duration) (parsed, error) {
	p := parsed{presigned: true, query: q}
	if q.Get("X-Amz-Algorithm") != algorithm {
		return p, queryError("X-Amz-Algorithm", "X-Amz-Algorithm must be "+algorithm)
	}
	if err := p.credential(q.Get("X-Amz-Credential")); err != nil {
		return p, queryError("X-Amz-Credential", err.Message)
	}
	var err error
	if p.amzDate, err = time.Parse(timeFormat, q.Get("X-Amz-Date")); err != nil {
		return p, queryError("X-Amz-Date", "malformed X-Amz-Date")
	}
	if !q.Has("X-Amz-Expires") && defaultExpiry > 0 {
		p.expires = defaultExpiry
	} else {
		n, err := strconv.Atoi(q.Get("X-Amz-Expires"))
		if err != nil || n < 1 || n > 604800 {
			return p, queryError("X-Amz-Expires", "X-Amz-Expires must be 1 to 604800")
		}
		p.expires = time.Duration(n) * time.Second
	}
	p.signedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	p.signature = q.Get("X-Amz-Signature")
	if q.Get("X-Amz-SignedHeaders") == "" {
		return p, queryError("X-Amz-SignedHeaders", "X-Amz-SignedHeaders and X-Amz-Signature are required")
	}
	if len(p.signature) != 64 {
		return p, queryError("X-Amz-Signature", "X-Amz-SignedHeaders and X-Amz-Signature are required")
	}
	p.token = q.Get("X-Amz-Security-Token")
	return p, nil
}

// queryError is an AuthorizationQueryParametersError blaming presigned
// parameter param.
func queryError(param, msg string) *Error {
	return &Error{Code: "AuthorizationQueryParametersError", Message: msg, Param: param}
}

func (p *parsed) credential(c string) *Error {
	if strings.Count(c, "/") != 4 {
		return fail("AuthorizationHeaderMalformed", "malformed credential scope")
	}
	var parts [5]string
	for i := 0; i < 4; i++ {
		parts[i], c, _ = strings.Cut(c, "/")
	}
	parts[4] = c
	if parts[4] != "aws4_request" || parts[0] == "" || len(parts[1]) != 8 {
		return fail("AuthorizationHeaderMalformed", "malformed credential scope")
	}
	p.scope = Scope{AccessKeyID: parts[0], Date: parts[1], Region: parts[2], Service: parts[3]}
	return nil
}

// bufPool holds the buffers canonical requests and strings to sign are
// built in.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// canonicalRequest builds the canonical request (AWS SigV4 specification).
func canonicalRequest(r *http.Request, p parsed, payload string, normalize bool) string {
	return string(appendCanonicalRequest(nil, r, p, payload, normalize))
}

// appendCanonicalRequest appends the canonical request to b.
func appendCanonicalRequest(b []byte, r *http.Request, p parsed, payload string, normalize bool) []byte {
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = appendCanonicalURI(b, r.URL, normalize)
	b = append(b, '\n')
	if r.URL.RawQuery != "" {
		b = append(b, canonicalQuery(p.query, p.presigned)...)
	}
	b = append(b, '\n')
	for _, h := range p.signedHeaders {
		b = append(b, h...)
		b = append(b, ':')
		switch {
		case h == "host":
			b = append(b, r.Host...)
		case h == "content-length" && r.Header.Get("Content-Length") == "":
			b = strconv.AppendInt(b, r.ContentLength, 10)
		default:
			for i, v := range r.Header[headerKey(h)] {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendTrimmed(b, v)
			}
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, h := range p.signedHeaders {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, h...)
	}
	b = append(b, '\n')
	return append(b, payload...)
}

// commonHeaders are the canonical forms of the header names SDKs sign, so
// the common case needs no allocation.
var commonHeaders = map[string]string{}

func init() {
	for _, h := range []string{"Accept-Encoding", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "Content-Length", "Content-Type",
		"Content-Md5", "Content-Encoding", "X-Amz-Content-Sha256", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-User-Agent",
		"X-Amz-Target", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Checksum-Crc32",
		"X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Crc64nvme", "X-Amz-Checksum-Sha1", "X-Amz-Checksum-Sha256", "Range", "If-Match",
		"If-None-Match", "X-Amz-Copy-Source", "X-Amz-Metadata-Directive", "Expect"} {
		commonHeaders[strings.ToLower(h)] = textproto.CanonicalMIMEHeaderKey(h)
	}
}

// headerKey is the key of header h (a lower-case name) in an http.Header.
func headerKey(h string) string {
	if k, ok := commonHeaders[h]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(h)
}

// appendTrimmed appends v with leading and trailing white space removed and
// inner runs of it collapsed to one space (as strings.Fields then Join).
func appendTrimmed(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return append(b, strings.Join(strings.Fields(v), " ")...)
		}
	}
	first := true
	for i := 0; i < len(v); {
		if asciiSpace(v[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(v) && !asciiSpace(v[j]) {
			j++
		}
		if !first {
			b = append(b, ' ')
		}
		b = append(b, v[i:j]...)
		first = false
		i = j
	}
	return b
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func canonicalURI(u *url.URL, normalize bool) string {
	return string(appendCanonicalURI(nil, u, normalize))
}

// appendCanonicalURI appends the path as sent, each segment URI-encoded
// once (S3) or twice (other services).
func appendCanonicalURI(b []byte, u *url.URL, normalize bool) []byte {
	if u.EscapedPath() == "" {
		return append(b, '/')
	}
	for i := 0; i < len(u.Path); i++ {
		switch c := u.Path[i]; {
		case c == '/':
			b = append(b, c)
		case unreserved(c):
			b = append(b, c)
		case normalize:
			b = append(b, '%', '2', '5', upperHex[c>>4], upperHex[c&15])
		default:
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return b
}

func canonicalQuery(q url.Values, presigned bool) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		keys = append(keys, k)
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, k := range keys {
		for _, v := range q[k] {
			pairs = append(pairs, kv{encode(k), encode(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

const upperHex = "0123456789ABCDEF"

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// encode is RFC 3986 percent-encoding of everything but unreserved
// characters.
func encode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return string(b)
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// SigningKey derives the SigV4 signing key.
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

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
	"net/url"
	"sort"
	"strconv"
	"strings"
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
// contains a secret.
type Error struct {
	Code    string
	Message string
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
	// encoding; payload hash from X-Amz-Content-Sha256).
	S3 bool
	// MaxBody bounds a body read to hash it (non-S3); default 1 MiB.
	MaxBody int64
	Now     func() time.Time
}

// Result is a verified request's credentials.
type Result struct {
	Credentials Credentials
	Presigned   bool
	Time        time.Time

	// What an aws-chunked body's chunk signatures chain from.
	seed  string
	key   []byte
	scope string
}

type parsed struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
	amzDate                          time.Time
	expires                          time.Duration
	token                            string
	presigned                        bool
}

// Verify checks r. Missing authentication gives code
// MissingAuthenticationToken; the body, when read, is restored for the
// handler.
func (v *Verifier) Verify(r *http.Request) (Result, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	p, err := parse(r)
	if err != nil {
		return Result{}, err
	}
	if p.service != v.Service {
		return Result{}, fail("AuthorizationHeaderMalformed", "credential scope service %q; expected %q", p.service, v.Service)
	}
	if !contains(v.Regions, p.region) {
		return Result{}, fail("AuthorizationHeaderMalformed", "credential scope region %q is not served here", p.region)
	}
	if p.amzDate.Format("20060102") != p.date {
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
	creds, err := v.Source.Lookup(r.Context(), p.accessKey, p.token)
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
	creq := canonicalRequest(r, p, payload, !v.S3)
	scope := p.date + "/" + p.region + "/" + p.service + "/aws4_request"
	sum := sha256.Sum256([]byte(creq))
	sts := algorithm + "\n" + p.amzDate.Format(timeFormat) + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := SigningKey(creds.Secret, p.date, p.region, p.service)
	want := hex.EncodeToString(hmacSHA256(key, []byte(sts)))
	if !hmac.Equal([]byte(want), []byte(p.signature)) {
		return Result{}, fail("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided")
	}
	return Result{Credentials: creds, Presigned: p.presigned, Time: p.amzDate, seed: want, key: key, scope: scope}, nil
}

func (v *Verifier) payloadHash(r *http.Request, p parsed) (string, error) {
	if p.presigned && v.S3 {
		return unsignedPayload, nil
	}
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && (v.S3 || h == unsignedPayload) {
		return h, nil
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

func parse(r *http.Request) (parsed, error) {
	var p parsed
	auth := r.Header.Get("Authorization")
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "" {
		if auth != "" {
			return p, fail("InvalidArgument", "Only one auth mechanism allowed")
		}
		return parseQuery(q)
	}
	if auth == "" {
		return p, fail("MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(auth, algorithm+" ")
	if !ok {
		return p, fail("IncompleteSignature", "unsupported authorization algorithm")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, fail("IncompleteSignature", "malformed Authorization header")
		}
		fields[k] = val
	}
	if err := p.credential(fields["Credential"]); err != nil {
		return p, err
	}
	p.signedHeaders = strings.Split(fields["SignedHeaders"], ";")
	p.signature = fields["Signature"]
	if fields["SignedHeaders"] == "" || len(p.signature) != 64 {
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

func parseQuery(q url.Values) (parsed, error) {
	var p parsed
	p.presigned = true
	if q.Get("X-Amz-Algorithm") != algorithm {
		return p, fail("AuthorizationQueryParametersError", "X-Amz-Algorithm must be "+algorithm)
	}
	if err := p.credential(q.Get("X-Amz-Credential")); err != nil {
		err.Code = "AuthorizationQueryParametersError"
		return p, err
	}
	var err error
	if p.amzDate, err = time.Parse(timeFormat, q.Get("X-Amz-Date")); err != nil {
		return p, fail("AuthorizationQueryParametersError", "malformed X-Amz-Date")
	}
	n, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || n < 1 || n > 604800 {
		return p, fail("AuthorizationQueryParametersError", "X-Amz-Expires must be 1 to 604800")
	}
	p.expires = time.Duration(n) * time.Second
	p.signedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	p.signature = q.Get("X-Amz-Signature")
	if q.Get("X-Amz-SignedHeaders") == "" || len(p.signature) != 64 {
		return p, fail("AuthorizationQueryParametersError", "X-Amz-SignedHeaders and X-Amz-Signature are required")
	}
	p.token = q.Get("X-Amz-Security-Token")
	return p, nil
}

func (p *parsed) credential(c string) *Error {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" || len(parts[1]) != 8 {
		return fail("AuthorizationHeaderMalformed", "malformed credential scope")
	}
	p.accessKey, p.date, p.region, p.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// canonicalRequest builds the canonical request (AWS SigV4 specification).
func canonicalRequest(r *http.Request, p parsed, payload string, normalize bool) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL, normalize))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query(), p.presigned))
	b.WriteByte('\n')
	for _, h := range p.signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		switch {
		case h == "host":
			b.WriteString(r.Host)
		case h == "content-length" && r.Header.Get("Content-Length") == "":
			b.WriteString(strconv.FormatInt(r.ContentLength, 10))
		default:
			vals := r.Header.Values(h)
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strings.Join(strings.Fields(v), " "))
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(p.signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

func canonicalURI(u *url.URL, normalize bool) string {
	path := u.EscapedPath()
	if path == "" {
		return "/"
	}
	if !normalize {
		// S3: the path as sent, each segment URI-encoded once.
		segs := strings.Split(u.Path, "/")
		for i, s := range segs {
			segs[i] = encode(s)
		}
		return strings.Join(segs, "/")
	}
	segs := strings.Split(u.Path, "/")
	for i, s := range segs {
		segs[i] = encode(encode(s))
	}
	return strings.Join(segs, "/")
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

// encode is RFC 3986 percent-encoding of everything but unreserved
// characters.
func encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
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

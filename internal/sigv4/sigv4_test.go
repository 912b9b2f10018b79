package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/writ-id/writ/internal/sigv4"
)

type source map[string]sigv4.Credentials

func (s source) Lookup(ctx context.Context, ak, tok string) (sigv4.Credentials, error) {
	c, ok := s[ak]
	if !ok {
		return sigv4.Credentials{}, &sigv4.Error{Code: "InvalidAccessKeyId", Message: "unknown key"}
	}
	return c, nil
}

const (
	exampleKey    = "AKIDEXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// TestAWSSuiteVectors checks requests of AWS's published SigV4 test suite
// (aws-sig-v4-test-suite: get-vanilla, get-vanilla-query-order-key-case,
// post-vanilla), signed on 2015-08-30 for service "service".
func TestAWSSuiteVectors(t *testing.T) {
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	v := &sigv4.Verifier{Service: "service", Regions: []string{"us-east-1"}, Source: source{exampleKey: {AccessKeyID: exampleKey, Secret: exampleSecret}},
		Now: func() time.Time { return at }}
	for _, c := range []struct{ name, method, target, sig string }{
		{"get-vanilla", "GET", "/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"post-vanilla", "POST", "/", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest(c.method, "http://example.amazonaws.com"+c.target, nil)
			r.Host = "example.amazonaws.com"
			r.Header.Set("X-Amz-Date", "20150830T123600Z")
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="+c.sig)
			if _, err := v.Verify(r); err != nil {
				t.Fatalf("published vector refused: %v", err)
			}
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), c.sig[:4], "0000", 1))
			if _, err := v.Verify(r); !isCode(err, "SignatureDoesNotMatch") {
				t.Fatalf("altered signature: %v", err)
			}
		})
	}
}

func isCode(err error, code string) bool {
	var e *sigv4.Error
	return errors.As(err, &e) && e.Code == code
}

// TestSDKSignerRoundTrips signs with aws-sdk-go-v2's own signer.
func TestSDKSignerRoundTrips(t *testing.T) {
	now := time.Now().UTC()
	src := source{
		"AKIAEXAMPLE000000001": {AccessKeyID: "AKIAEXAMPLE000000001", Secret: "long-term-secret"},
		"ASIAEXAMPLE000000002": {AccessKeyID: "ASIAEXAMPLE000000002", Secret: "temp-secret", SessionToken: "session-token-1"},
	}
	v := &sigv4.Verifier{Service: "sts", Regions: []string{"us-east-1"}, Source: src, Now: func() time.Time { return now }}
	signer := v4.NewSigner()
	sign := func(ak, secret, token, body string, at time.Time, mutate func(*http.Request)) *http.Request {
		r, _ := http.NewRequest("POST", "http://127.0.0.1:8401/?x=1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		sum := sha256.Sum256([]byte(body))
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: secret, SessionToken: token},
			r, hex.EncodeToString(sum[:]), "sts", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(r)
		}
		return r
	}
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	if res, err := v.Verify(sign("AKIAEXAMPLE000000001", "long-term-secret", "", body, now, nil)); err != nil || res.Credentials.AccessKeyID != "AKIAEXAMPLE000000001" {
		t.Fatalf("long-term: %v", err)
	}
	r := sign("ASIAEXAMPLE000000002", "temp-secret", "session-token-1", body, now, nil)
	if _, err := v.Verify(r); err != nil {
		t.Fatalf("temporary: %v", err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(r.Body)
	if buf.String() != body {
		t.Error("the body was not restored for the handler")
	}
	cases := []struct {
		name string
		req  *http.Request
		code string
	}{
		{"wrong secret", sign("AKIAEXAMPLE000000001", "other", "", body, now, nil), "SignatureDoesNotMatch"},
		{"unknown key", sign("AKIAUNKNOWN000000000", "x", "", body, now, nil), "InvalidAccessKeyId"},
		{"wrong session token", sign("ASIAEXAMPLE000000002", "temp-secret", "session-token-2", body, now, nil), "InvalidToken"},
		{"body altered", sign("AKIAEXAMPLE000000001", "long-term-secret", "", body, now, func(r *http.Request) {
			r.Body = ioNop("Action=AssumeRole&Version=2011-06-15")
		}), "SignatureDoesNotMatch"},
		{"signed header altered", sign("AKIAEXAMPLE000000001", "long-term-secret", "", body, now, func(r *http.Request) {
			r.Header.Set("Content-Type", "text/plain")
		}), "SignatureDoesNotMatch"},
		{"query altered", sign("AKIAEXAMPLE000000001", "long-term-secret", "", body, now, func(r *http.Request) { r.URL.RawQuery = "x=2" }), "SignatureDoesNotMatch"},
		{"skew", sign("AKIAEXAMPLE000000001", "long-term-secret", "", body, now.Add(-20*time.Minute), nil), "RequestTimeTooSkewed"},
		// Only S3 takes UNSIGNED-PAYLOAD: elsewhere the body is always
		// covered, and a body swapped after signing is caught.
		{"unsigned payload, body swapped", func() *http.Request {
			r, _ := http.NewRequest("POST", "http://127.0.0.1:8401/?x=1", strings.NewReader(body))
			r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAEXAMPLE000000001", SecretAccessKey: "long-term-secret"},
				r, "UNSIGNED-PAYLOAD", "sts", "us-east-1", now); err != nil {
				t.Fatal(err)
			}
			r.Body = ioNop("Action=AssumeRole&Version=2011-06-15")
			return r
		}(), "SignatureDoesNotMatch"},
		{"no auth", func() *http.Request { r, _ := http.NewRequest("POST", "http://127.0.0.1:8401/", nil); return r }(), "MissingAuthenticationToken"},
	}
	for _, c := range cases {
		if _, err := v.Verify(c.req); !isCode(err, c.code) {
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
	// An unsigned header may change.
	ok := sign("AKIAEXAMPLE000000001", "long-term-secret", "", body, now, func(r *http.Request) { r.Header.Set("X-Unsigned", "x") })
	if _, err := v.Verify(ok); err != nil {
		t.Errorf("unsigned header change: %v", err)
	}
	// Wrong service or region in the scope.
	other := &sigv4.Verifier{Service: "s3", Regions: []string{"us-east-1"}, Source: src, Now: v.Now}
	if _, err := other.Verify(sign("AKIAEXAMPLE000000001", "long-term-secret", "", body, now, nil)); !isCode(err, "AuthorizationHeaderMalformed") {
		t.Errorf("wrong service: %v", err)
	}
	eu := &sigv4.Verifier{Service: "sts", Regions: []string{"eu-west-1"}, Source: src, Now: v.Now}
	if _, err := eu.Verify(sign("AKIAEXAMPLE000000001", "long-term-secret", "", body, now, nil)); !isCode(err, "AuthorizationHeaderMalformed") {
		t.Errorf("wrong region: %v", err)
	}
}

func TestPresigned(t *testing.T) {
	now := time.Now().UTC()
	src := source{"AKIAEXAMPLE000000001": {AccessKeyID: "AKIAEXAMPLE000000001", Secret: "s"}}
	v := &sigv4.Verifier{Service: "s3", S3: true, Regions: []string{"us-east-1"}, Source: src, Now: func() time.Time { return now }}
	r, _ := http.NewRequest("GET", "http://127.0.0.1:8402/writ-demo/private/a%20b.txt?x-id=GetObject", nil)
	q := r.URL.Query()
	q.Set("X-Amz-Expires", "300")
	r.URL.RawQuery = q.Encode()
	// As the S3 client signs: the path is not escaped a second time.
	s3signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	u, _, err := s3signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAEXAMPLE000000001", SecretAccessKey: "s"},
		r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) *http.Request { r, _ := http.NewRequest("GET", u, nil); return r }
	if res, err := v.Verify(get(u)); err != nil || !res.Presigned {
		t.Fatalf("presigned: %v", err)
	}
	if _, err := v.Verify(get(strings.Replace(u, "X-Amz-Signature=", "X-Amz-Signature=0", 1)[:len(u)])); err == nil {
		t.Error("altered presigned signature accepted")
	}
	later := &sigv4.Verifier{Service: "s3", S3: true, Regions: []string{"us-east-1"}, Source: src, Now: func() time.Time { return now.Add(10 * time.Minute) }}
	if _, err := later.Verify(get(u)); !isCode(err, "AccessDenied") {
		t.Errorf("expired presign: %v", err)
	}
}

func ioNop(s string) interface {
	Read([]byte) (int, error)
	Close() error
} {
	return nopCloser{strings.NewReader(s)}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func FuzzVerifyAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", "20150830T123600Z", "/?a=b")
	f.Add("AWS4-HMAC-SHA256 Credential=//////, SignedHeaders=;;;, Signature=", "x", "/%zz")
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	v := &sigv4.Verifier{Service: "service", Regions: []string{"us-east-1"}, Source: source{exampleKey: {AccessKeyID: exampleKey, Secret: exampleSecret}},
		Now: func() time.Time { return at }}
	f.Fuzz(func(t *testing.T, auth, date, target string) {
		r, err := http.NewRequest("GET", "http://example.amazonaws.com/", nil)
		if err != nil {
			return
		}
		if u, err := r.URL.Parse(target); err == nil {
			r.URL = u
		}
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		if _, err := v.Verify(r); err != nil {
			var e *sigv4.Error
			if !errors.As(err, &e) {
				t.Fatalf("error without an AWS code: %v", err)
			}
		}
	})
}

// TestS3HeaderAuthNeedsPayloadHash: S3 requires x-amz-content-sha256 on
// every header-signed request, whatever its size (a presigned one implies
// UNSIGNED-PAYLOAD), and the result names the headers the signature covers.
func TestS3HeaderAuthNeedsPayloadHash(t *testing.T) {
	now := time.Now().UTC()
	src := source{"AKIAEXAMPLE000000001": {AccessKeyID: "AKIAEXAMPLE000000001", Secret: "s"}}
	v := &sigv4.Verifier{Service: "s3", S3: true, Regions: []string{"us-east-1"}, Source: src, Now: func() time.Time { return now }}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	sign := func(method, body string, withHash bool) *http.Request {
		r, _ := http.NewRequest(method, "http://127.0.0.1:8402/writ-demo/k", strings.NewReader(body))
		sum := sha256.Sum256([]byte(body))
		if withHash {
			r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		}
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAEXAMPLE000000001", SecretAccessKey: "s"},
			r, hex.EncodeToString(sum[:]), "s3", "us-east-1", now); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, c := range []struct{ method, body string }{{"GET", ""}, {"PUT", "small"}} {
		_, err := v.Verify(sign(c.method, c.body, false))
		var e *sigv4.Error
		if !errors.As(err, &e) || e.Code != "InvalidRequest" || e.Message != "Missing required header for this request: x-amz-content-sha256" {
			t.Errorf("%s without x-amz-content-sha256: %v", c.method, err)
		}
		res, err := v.Verify(sign(c.method, c.body, true))
		if err != nil {
			t.Fatalf("%s with x-amz-content-sha256: %v", c.method, err)
		}
		if !slices.Contains(res.SignedHeaders, "host") || !slices.Contains(res.SignedHeaders, "x-amz-content-sha256") || !slices.Contains(res.SignedHeaders, "x-amz-date") {
			t.Errorf("signed headers %q", res.SignedHeaders)
		}
	}
	// Another service still hashes the body it is given.
	generic := &sigv4.Verifier{Service: "s3", Regions: []string{"us-east-1"}, Source: src, Now: v.Now}
	if _, err := generic.Verify(sign("PUT", "small", false)); err != nil {
		t.Errorf("non-S3 verifier without x-amz-content-sha256: %v", err)
	}
}

// TestErrorCarriesScope: a request signed for another region is refused
// with the credential scope the signer used (and whether it was presigned)
// in the error, which services answer with rather than parse the request
// again; a credential that does not parse gives no scope.
func TestErrorCarriesScope(t *testing.T) {
	now := time.Now().UTC()
	const ak = "AKIAEXAMPLE000000001"
	creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: "s"}
	v := &sigv4.Verifier{Service: "s3", S3: true, Regions: []string{"us-east-1"}, Source: source{ak: {AccessKeyID: ak, Secret: "s"}},
		Now: func() time.Time { return now }}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	want := sigv4.Scope{AccessKeyID: ak, Date: now.Format("20060102"), Region: "eu-west-1", Service: "s3"}
	scopeErr := func(t *testing.T, err error) *sigv4.Error {
		t.Helper()
		var e *sigv4.Error
		if !errors.As(err, &e) || e.Code != "AuthorizationHeaderMalformed" {
			t.Fatalf("got %v, want AuthorizationHeaderMalformed", err)
		}
		if e.Scope == nil || *e.Scope != want {
			t.Fatalf("scope %+v, want %+v", e.Scope, want)
		}
		return e
	}

	t.Run("header", func(t *testing.T) {
		r, _ := http.NewRequest("GET", "http://127.0.0.1:8402/writ-demo/k", nil)
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		if err := signer.SignHTTP(context.Background(), creds, r, "UNSIGNED-PAYLOAD", "s3", "eu-west-1", now); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(r)
		if e := scopeErr(t, err); e.Presigned {
			t.Error("a header-signed request reported presigned")
		}
		// A credential that does not parse is no scope.
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
		var e *sigv4.Error
		if _, err := v.Verify(r); !errors.As(err, &e) || e.Scope != nil {
			t.Errorf("malformed credential: %+v", err)
		}
	})

	t.Run("presigned", func(t *testing.T) {
		r, _ := http.NewRequest("GET", "http://127.0.0.1:8402/writ-demo/k?X-Amz-Expires=300", nil)
		u, _, err := signer.PresignHTTP(context.Background(), creds, r, "UNSIGNED-PAYLOAD", "s3", "eu-west-1", now)
		if err != nil {
			t.Fatal(err)
		}
		get, _ := http.NewRequest("GET", u, nil)
		_, err = v.Verify(get)
		if e := scopeErr(t, err); !e.Presigned {
			t.Error("a presigned request not reported presigned")
		}
	})
}

// TestPresignedErrorNamesParam: an AuthorizationQueryParametersError names
// the presigned parameter at fault (the first, in the order checked), so
// that a service can word its own message for it.
func TestPresignedErrorNamesParam(t *testing.T) {
	now := time.Now().UTC()
	const ak = "AKIAEXAMPLE000000001"
	v := &sigv4.Verifier{Service: "s3", S3: true, Regions: []string{"us-east-1"}, Source: source{ak: {AccessKeyID: ak, Secret: "s"}},
		Now: func() time.Time { return now }}
	r, _ := http.NewRequest("GET", "http://127.0.0.1:8402/writ-demo/k?X-Amz-Expires=300", nil)
	u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: ak, SecretAccessKey: "s"}, r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ param, value string }{
		{"X-Amz-Algorithm", "AWS4-HMAC-SHA1"},
		{"X-Amz-Credential", "nonsense"},
		{"X-Amz-Date", "yesterday"},
		{"X-Amz-Expires", "0"},
		{"X-Amz-SignedHeaders", ""},
		{"X-Amz-Signature", "abc"},
	} {
		get, _ := http.NewRequest("GET", u, nil)
		q := get.URL.Query()
		q.Set(c.param, c.value)
		get.URL.RawQuery = q.Encode()
		_, err := v.Verify(get)
		var e *sigv4.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s=%q: %v", c.param, c.value, err)
		}
		if e.Code != "AuthorizationQueryParametersError" || e.Param != c.param || !e.Presigned {
			t.Errorf("%s=%q: got %v, param %q, presigned %v", c.param, c.value, err, e.Param, e.Presigned)
		}
	}
}

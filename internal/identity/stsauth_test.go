package identity_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
)

const (
	adminKey    = "AKIAWRITDEMOADMIN001"
	adminSecret = "writ-demo-admin-secret"
	adminARN    = "arn:aws:iam::000000000000:user/admin"
	// emptySHA256 is the payload hash of a request without a body.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// status is the HTTP status of an SDK call's error (0 when none).
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// wantErr checks an SDK error's code, HTTP status and message.
func wantErr(t *testing.T, what string, err error, wantCode string, wantStatus int, wantMsg string) {
	t.Helper()
	if code(err) != wantCode || status(err) != wantStatus || !strings.Contains(errMessage(err), wantMsg) {
		t.Errorf("%s: %v; want %d %s %q", what, err, wantStatus, wantCode, wantMsg)
	}
}

func errMessage(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// scopedSigner signs as the SDK does, with the credential scope's service
// or region replaced.
type scopedSigner struct {
	service, region string
}

func (s scopedSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, payloadHash, service, region string, at time.Time, optFns ...func(*v4.SignerOptions)) error {
	if s.service != "" {
		service = s.service
	}
	if s.region != "" {
		region = s.region
	}
	return v4.NewSigner().SignHTTP(ctx, c, r, payloadHash, service, region, at, optFns...)
}

// stsError is an STS error response's body.
type stsError struct {
	Code    string `xml:"Error>Code"`
	Message string `xml:"Error>Message"`
}

// get sends a (presigned) request and returns its status, body and error.
func (f *fx) get(method, u string, h http.Header) (int, string, stsError) {
	f.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range h {
		if !strings.EqualFold(k, "host") {
			req.Header[k] = v
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e stsError
	if resp.StatusCode != http.StatusOK {
		xml.Unmarshal(b, &e)
	}
	return resp.StatusCode, string(b), e
}

// presign presigns GetCallerIdentity (GET) as the admin user with the given
// scope and extra query parameters (X-Amz-Expires among them).
func (f *fx) presign(region, service string, extra url.Values) string {
	f.t.Helper()
	q := url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}
	for k, v := range extra {
		q[k] = v
	}
	req, err := http.NewRequest(http.MethodGet, f.App.URL(app.Identity)+"/?"+q.Encode(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	u, _, err := v4.NewSigner().PresignHTTP(f.ctx, aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret}, req,
		emptySHA256, service, region, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// TestSTSCredentialScope: a credential scope naming another region or
// another service than sts is STS's 403 SignatureDoesNotMatch, with AWS's
// messages, whether the request is signed in its header or presigned.
func TestSTSCredentialScope(t *testing.T) {
	f := start(t)
	signed := func(s scopedSigner) *sts.Client {
		return sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Identity)), RetryMaxAttempts: 1,
			Credentials: f.stsWith(adminKey, adminSecret, "").Options().Credentials, HTTPSignerV4: s})
	}
	if who, err := signed(scopedSigner{}).GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{}); err != nil || aws.ToString(who.Arn) != adminARN {
		t.Fatalf("correctly scoped: %v %v", who, err)
	}
	const region, service = "Credential should be scoped to a valid region.", "Credential should be scoped to correct service: 'sts'."
	_, err := signed(scopedSigner{region: "eu-west-1"}).GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	wantErr(t, "another region", err, "SignatureDoesNotMatch", http.StatusForbidden, region)
	_, err = signed(scopedSigner{service: "iam"}).GetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	wantErr(t, "another service", err, "SignatureDoesNotMatch", http.StatusForbidden, service)
	_, err = signed(scopedSigner{service: "iam", region: "eu-west-1"}).AssumeRole(f.ctx, &sts.AssumeRoleInput{RoleArn: aws.String(userRole), RoleSessionName: aws.String("s1")})
	wantErr(t, "another service and region", err, "SignatureDoesNotMatch", http.StatusForbidden, service)

	expires := url.Values{"X-Amz-Expires": {"60"}}
	for _, c := range []struct{ region, service, msg string }{{"eu-west-1", "sts", region}, {"us-east-1", "s3", service}} {
		st, _, e := f.get(http.MethodGet, f.presign(c.region, c.service, expires), nil)
		if st != http.StatusForbidden || e.Code != "SignatureDoesNotMatch" || e.Message != c.msg {
			t.Errorf("presigned for %s/%s: %d %+v; want 403 SignatureDoesNotMatch %q", c.region, c.service, st, e, c.msg)
		}
	}
	// A scope that is not of the form date/region/service/aws4_request is
	// still an incomplete signature.
	u := strings.Replace(f.presign("us-east-1", "sts", expires), "%2Faws4_request", "%2Fnope", 1)
	if st, _, e := f.get(http.MethodGet, u, nil); st != http.StatusBadRequest || e.Code != "IncompleteSignature" {
		t.Errorf("malformed scope: %d %+v; want 400 IncompleteSignature", st, e)
	}
}

// TestPresignedGetCallerIdentity: the SDK's STS presigner (what
// aws-iam-authenticator and Vault-style IAM auth send) emits no
// X-Amz-Expires; STS takes such a URL as valid for 15 minutes from its
// X-Amz-Date. An X-Amz-Expires that is there must be 1 to 604800.
func TestPresignedGetCallerIdentity(t *testing.T) {
	f := start(t)
	// Present and in range, or out of range.
	st, body, _ := f.get(http.MethodGet, f.presign("us-east-1", "sts", url.Values{"X-Amz-Expires": {"60"}}), nil)
	if st != http.StatusOK || !strings.Contains(body, "<Arn>"+adminARN+"</Arn>") {
		t.Fatalf("presigned with X-Amz-Expires=60: %d %s", st, body)
	}
	for _, n := range []string{"0", "604801", "soon"} {
		if st, _, e := f.get(http.MethodGet, f.presign("us-east-1", "sts", url.Values{"X-Amz-Expires": {n}}), nil); st != http.StatusBadRequest || e.Code != "IncompleteSignature" {
			t.Errorf("X-Amz-Expires=%s: %d %+v; want 400 IncompleteSignature", n, st, e)
		}
	}

	pc := sts.NewPresignClient(f.stsWith(adminKey, adminSecret, ""))
	p, err := pc.PresignGetCallerIdentity(f.ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p.URL, "X-Amz-Expires") {
		t.Fatalf("the SDK's presigned URL now has X-Amz-Expires (%s): this test no longer covers its absence", p.URL)
	}
	t.Run("missing X-Amz-Expires", func(t *testing.T) {
		st, body, _ := f.get(p.Method, p.URL, p.SignedHeader)
		if st != http.StatusOK || !strings.Contains(body, "<Arn>"+adminARN+"</Arn>") {
			t.Fatalf("SDK-presigned GetCallerIdentity: %d %s", st, body)
		}
		// 15 minutes on it has expired.
		f.Clock.Advance(16 * time.Minute)
		if st, _, e := f.get(p.Method, p.URL, p.SignedHeader); st == http.StatusOK {
			t.Fatalf("SDK-presigned URL accepted 16 minutes on: %+v", e)
		}
	})
}

// TestRoleArnValidation: RoleArn is an ARN of 20 to 2048 characters, as
// STS's API model says; a bare role name is a 400 ValidationError, not a
// way to the role.
func TestRoleArnValidation(t *testing.T) {
	opsTrust := config.NewPolicyDoc([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + adminARN + `"},"Action":"sts:AssumeRole"}]}`))
	f := start(t, func(c *config.Config) {
		c.IAM.Roles = append(c.IAM.Roles, config.Role{Name: "ops", MaxSession: time.Hour, Trust: opsTrust})
	})
	admin := f.stsWith(adminKey, adminSecret, "")
	if _, err := admin.AssumeRole(f.ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/ops"), RoleSessionName: aws.String("maint")}); err != nil {
		t.Fatalf("AssumeRole by ARN: %v", err)
	}
	short := func(v string) string {
		return "1 validation error detected: Value '" + v + "' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20"
	}
	_, err := admin.AssumeRole(f.ctx, &sts.AssumeRoleInput{RoleArn: aws.String("ops"), RoleSessionName: aws.String("maint")})
	wantErr(t, "AssumeRole of a bare role name", err, "ValidationError", http.StatusBadRequest, short("ops"))
	_, err = admin.AssumeRole(f.ctx, &sts.AssumeRoleInput{RoleArn: aws.String("ops-role-but-not-an-arn"), RoleSessionName: aws.String("maint")})
	wantErr(t, "AssumeRole of a long name", err, "ValidationError", http.StatusBadRequest, "ARN")
	_, err = admin.AssumeRole(f.ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/" + strings.Repeat("o", 2030)), RoleSessionName: aws.String("maint")})
	wantErr(t, "AssumeRole of a 2061-character ARN", err, "ValidationError", http.StatusBadRequest, "Member must have length less than or equal to 2048")

	// bob's ID token would otherwise buy demo-user (whose trust admits it).
	bob := aws.String(f.signIn("bob", "Bob-Passw0rd1"))
	if _, err := f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(userRole),
		RoleSessionName: aws.String("bob"), WebIdentityToken: bob}); err != nil {
		t.Fatalf("AssumeRoleWithWebIdentity by ARN: %v", err)
	}
	_, err = f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("demo-user"),
		RoleSessionName: aws.String("bob"), WebIdentityToken: bob})
	wantErr(t, "AssumeRoleWithWebIdentity of a bare role name", err, "ValidationError", http.StatusBadRequest, short("demo-user"))
	_, err = f.sts.AssumeRoleWithWebIdentity(f.ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("role/demo-user-not-an-arn"),
		RoleSessionName: aws.String("bob"), WebIdentityToken: bob})
	wantErr(t, "AssumeRoleWithWebIdentity of a long name", err, "ValidationError", http.StatusBadRequest, "ARN")
}

package objects_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/userpool"
)

const (
	poolID    = "us-east-1_WritDemo1"
	identPool = "us-east-1:2a7c5e0e-6f43-4a8e-9a51-3f1f0c5d7b21"
	bucket    = "writ-demo"
)

type fx struct {
	*apptest.Env
	t   testing.TB
	ctx context.Context
}

type identity struct {
	id                string
	ak, secret, token string
}

// credsFor signs a user in and trades the ID token at the identity pool.
func (f *fx) credsFor(user, pw string) identity {
	f.t.Helper()
	c := ci.New(ci.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Identity)), Credentials: aws.AnonymousCredentials{}})
	logins := f.logins(user, pw)
	id, err := c.GetId(f.ctx, &ci.GetIdInput{IdentityPoolId: aws.String(identPool), Logins: logins})
	if err != nil {
		f.t.Fatal(err)
	}
	cr, err := c.GetCredentialsForIdentity(f.ctx, &ci.GetCredentialsForIdentityInput{IdentityId: id.IdentityId, Logins: logins})
	if err != nil {
		f.t.Fatal(err)
	}
	return identity{id: aws.ToString(id.IdentityId), ak: aws.ToString(cr.Credentials.AccessKeyId), secret: aws.ToString(cr.Credentials.SecretKey),
		token: aws.ToString(cr.Credentials.SessionToken)}
}

// logins signs a user in (alice answers her TOTP challenge) and returns the
// identity pool's Logins map with the ID token.
func (f *fx) logins(user, pw string) map[string]string {
	f.t.Helper()
	idp := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}})
	out, err := idp.InitiateAuth(f.ctx, &cip.InitiateAuthInput{AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
		AuthParameters: map[string]string{"USERNAME": user, "PASSWORD": pw}})
	if err != nil {
		f.t.Fatal(err)
	}
	ar := out.AuthenticationResult
	if ar == nil {
		code, _ := userpool.TOTPNow("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", f.Clock.Now())
		r, err := idp.RespondToAuthChallenge(f.ctx, &cip.RespondToAuthChallengeInput{ClientId: aws.String("demo-web"), ChallengeName: out.ChallengeName,
			Session: out.Session, ChallengeResponses: map[string]string{"USERNAME": user, "SOFTWARE_TOKEN_MFA_CODE": code}})
		if err != nil {
			f.t.Fatal(err)
		}
		ar = r.AuthenticationResult
		f.Clock.Advance(30 * time.Second)
	}
	return map[string]string{strings.TrimPrefix(f.App.URL(app.IDP), "http://") + "/" + poolID: aws.ToString(ar.IdToken)}
}

// client is an S3 client. Virtual-hosted addressing needs bucket.host to
// reach the listener, so the dialer sends every name to it.
func (f *fx) client(ak, secret, token string, pathStyle bool) *s3.Client {
	addr := strings.TrimPrefix(f.App.URL(app.Objects), "http://")
	_, port, _ := net.SplitHostPort(addr)
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}}}
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://s3.writ.test:" + port), UsePathStyle: pathStyle,
		Credentials: credentials.NewStaticCredentialsProvider(ak, secret, token), HTTPClient: hc, RetryMaxAttempts: 1})
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestOwnPrefixIsolationWithSDK(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	for _, pathStyle := range []bool{false, true} {
		ac := f.client(alice.ak, alice.secret, alice.token, pathStyle)
		bc := f.client(bob.ak, bob.secret, bob.token, pathStyle)
		aliceKey := "private/" + alice.id + "/notes.txt"
		bobKey := "private/" + bob.id + "/diary.txt"
		body := []byte("alice's notes")
		put, err := ac.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey), Body: bytes.NewReader(body),
			ContentType: aws.String("text/plain"), Metadata: map[string]string{"owner": "alice"}})
		if err != nil {
			t.Fatalf("path style %v: alice puts her object: %v", pathStyle, err)
		}
		sum := md5.Sum(body)
		if aws.ToString(put.ETag) != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("ETag %s", aws.ToString(put.ETag))
		}
		got, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(b) != string(body) || aws.ToString(got.ContentType) != "text/plain" || got.Metadata["owner"] != "alice" {
			t.Fatalf("get: %q %s %v", b, aws.ToString(got.ContentType), got.Metadata)
		}
		if _, err := bc.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(bobKey), Body: strings.NewReader("bob")}); err != nil {
			t.Fatalf("bob puts his object: %v", err)
		}
		// Each is refused the other's object, both ways.
		if _, err := bc.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey)}); code(err) != "AccessDenied" {
			t.Errorf("bob reads alice's object: %v", err)
		}
		if _, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(bobKey)}); code(err) != "AccessDenied" {
			t.Errorf("alice reads bob's object: %v", err)
		}
		if _, err := bc.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("private/" + alice.id + "/evil"), Body: strings.NewReader("x")}); code(err) != "AccessDenied" {
			t.Errorf("bob writes into alice's prefix: %v", err)
		}
		// Listing: bob only with his own prefix; a missing key he may list is 404, elsewhere 403.
		l, err := bc.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("private/" + bob.id + "/")})
		if err != nil || len(l.Contents) != 1 || aws.ToString(l.Contents[0].Key) != bobKey {
			t.Fatalf("bob lists his prefix: %v %+v", err, l)
		}
		if _, err := bc.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}); code(err) != "AccessDenied" {
			t.Errorf("bob lists the whole bucket: %v", err)
		}
		if _, err := bc.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("private/" + bob.id + "/missing")}); code(err) != "NoSuchKey" {
			t.Errorf("bob's missing key: %v", err)
		}
		// alice (staff) reads her team's prefix by principal tag, not another team's.
		admin := f.client("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "", pathStyle)
		for _, k := range []string{"teams/engineering/plan.txt", "teams/sales/plan.txt"} {
			if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("teams/engineering/plan.txt")}); err != nil {
			t.Errorf("alice reads her team's file: %v", err)
		}
		if _, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("teams/sales/plan.txt")}); code(err) != "AccessDenied" {
			t.Errorf("alice reads another team's file: %v", err)
		}
		// Range reads; delete.
		rg, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey), Range: aws.String("bytes=0-4")})
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(rg.Body)
		rg.Body.Close()
		if string(b) != "alice" {
			t.Errorf("range: %q", b)
		}
		if _, err := ac.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey)}); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(aliceKey)}); err == nil {
			t.Error("deleted object still there")
		}
	}
}

func TestAdminAndErrors(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "", true)
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("reports")}); err != nil {
		t.Fatal(err)
	}
	lb, err := admin.ListBuckets(f.ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 2 {
		t.Fatalf("ListBuckets: %v %+v", err, lb)
	}
	for i := 0; i < 5; i++ {
		admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("2026/q" + string(rune('1'+i)) + ".txt"), Body: strings.NewReader("x")})
	}
	admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("top.txt"), Body: strings.NewReader("x")})
	l, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String("reports"), Delimiter: aws.String("/")})
	if err != nil || len(l.CommonPrefixes) != 1 || aws.ToString(l.CommonPrefixes[0].Prefix) != "2026/" || len(l.Contents) != 1 {
		t.Fatalf("delimiter listing: %v %+v", err, l)
	}
	// Paging with continuation tokens through the SDK paginator.
	p := s3.NewListObjectsV2Paginator(admin, &s3.ListObjectsV2Input{Bucket: aws.String("reports"), MaxKeys: aws.Int32(2)})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Contents)
	}
	if n != 6 {
		t.Errorf("paged listing saw %d objects", n)
	}
	cases := map[string]struct {
		c    *s3.Client
		want string
	}{
		"unknown key":        {f.client("AKIAUNKNOWNKEY000000", "x", "", true), "InvalidAccessKeyId"},
		"wrong secret":       {f.client("AKIAWRITDEMOADMIN001", "nope", "", true), "SignatureDoesNotMatch"},
		"ASIA without token": {f.client("ASIAAAAAAAAAAAAAAAAA", "x", "", true), "InvalidToken"},
		"corrupt token":      {f.client("ASIAAAAAAAAAAAAAAAAA", "x", "bm90IGEgdG9rZW4", true), "InvalidToken"},
	}
	for name, c := range cases {
		if _, err := c.c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String("top.txt")}); code(err) != c.want {
			t.Errorf("%s: %v, want %s", name, err, c.want)
		}
	}
	// Anonymous: AccessDenied, with a request id.
	resp, err := http.Get(f.App.URL(app.Objects) + "/reports/top.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("x-amz-request-id") == "" {
		t.Errorf("anonymous: %d %q", resp.StatusCode, resp.Header.Get("x-amz-request-id"))
	}
	// A bad Content-MD5 is refused and leaves nothing behind.
	_, err = admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("bad.txt"), Body: strings.NewReader("abc"),
		ContentMD5: aws.String("AAAAAAAAAAAAAAAAAAAAAA==")})
	if code(err) != "BadDigest" {
		t.Errorf("bad Content-MD5: %v", err)
	}
	if _, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String("reports"), Key: aws.String("bad.txt")}); err == nil {
		t.Error("a refused write left an object")
	}
	// Presigned GET.
	ps := s3.NewPresignClient(admin)
	req, err := ps.PresignGetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String("top.txt")}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) int {
		r, _ := http.NewRequest("GET", strings.Replace(u, "s3.writ.test", "127.0.0.1", 1), nil)
		r.Host = strings.Split(strings.TrimPrefix(u, "http://"), "/")[0]
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(req.URL); s != 200 {
		t.Errorf("presigned GET: %d", s)
	}
	if s := get(strings.Replace(req.URL, "X-Amz-Signature=", "X-Amz-Signature=f", 1)[:len(req.URL)]); s != 403 {
		t.Errorf("altered presigned URL: %d", s)
	}
	f.Clock.Advance(10 * time.Minute)
	if s := get(req.URL); s != 403 {
		t.Errorf("expired presigned URL: %d", s)
	}
}

// TestWildcardInAPrincipalTag: a principal tag's value is literal where a
// policy names it: alice, whose department attribute she set to "*", reads
// the prefix teams/*/ and no team's.
func TestWildcardInAPrincipalTag(t *testing.T) {
	f := &fx{Env: apptest.Start(t, func(c *config.Config) {
		c.UserPools[0].Users[0].Attributes = map[string]string{"custom:department": "*"}
	}), t: t, ctx: context.Background()}
	admin := f.client("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "", true)
	for _, k := range []string{"teams/engineering/plan.txt", "teams/*/plan.txt"} {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	ac := f.client(alice.ak, alice.secret, alice.token, true)
	if _, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("teams/engineering/plan.txt")}); code(err) != "AccessDenied" {
		t.Errorf("department \"*\" reads engineering's file: %v", err)
	}
	if _, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("teams/*/plan.txt")}); err != nil {
		t.Errorf("department \"*\" reads teams/*/: %v", err)
	}
}

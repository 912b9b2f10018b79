package objects_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
)

// TestAuthorizationErrors: a presigned URL's AuthorizationQueryParametersError
// says which parameter is wrong, and an Authorization header of another
// scheme than SigV4 is S3's 400 InvalidArgument "Unsupported Authorization
// Type" (SigV2: InvalidRequest).
func TestAuthorizationErrors(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	ps, err := s3.NewPresignClient(admin).PresignGetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ps.URL)
	if err != nil {
		t.Fatal(err)
	}
	get := func(q url.Values, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", f.App.URL(app.Objects)+u.Path+"?"+q.Encode(), nil)
		req.Host = u.Host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get(u.Query(), nil); st != 200 {
		t.Fatalf("presigned GET: %d %s", st, body)
	}
	cases := []struct{ param, value, says string }{
		{"X-Amz-Expires", "700000", "X-Amz-Expires must be less than a week"},
		{"X-Amz-Expires", "soon", "X-Amz-Expires should be a number"},
		{"X-Amz-Expires", "0", "X-Amz-Expires must be"},
		{"X-Amz-Credential", "nonsense", "Error parsing the X-Amz-Credential parameter"},
		{"X-Amz-Date", "yesterday", "X-Amz-Date must be in the ISO8601 Long Format"},
		{"X-Amz-Algorithm", "AWS4-HMAC-SHA1", "X-Amz-Algorithm only supports"},
	}
	for _, c := range cases {
		q := u.Query()
		q.Set(c.param, c.value)
		st, body := get(q, nil)
		if st != 400 || !strings.Contains(body, "<Code>AuthorizationQueryParametersError</Code>") || !strings.Contains(body, c.says) {
			t.Errorf("%s=%s: %d %s", c.param, c.value, st, body)
		}
		if c.param != "X-Amz-Credential" && strings.Contains(body, "X-Amz-Credential") {
			t.Errorf("%s=%s blames the credential: %s", c.param, c.value, body)
		}
	}
	for _, auth := range []string{"Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "Basic YWRtaW46c2VjcmV0"} {
		st, body := get(url.Values{}, map[string]string{"Authorization": auth})
		if st != 400 || !strings.Contains(body, "<Code>InvalidArgument</Code>") || !strings.Contains(body, "Unsupported Authorization Type") {
			t.Errorf("Authorization: %s: %d %s", auth, st, body)
		}
	}
	if st, body := get(url.Values{}, map[string]string{"Authorization": "AWS " + adminAK + ":c2lnbmF0dXJl"}); st != 400 || !strings.Contains(body, "<Code>InvalidRequest</Code>") {
		t.Errorf("SigV2: %d %s", st, body)
	}
}

// TestErrorsNameWhatIsMissing: as S3's, a NoSuchKey error names the key,
// NoSuchBucket the bucket and NoSuchUpload the upload (presigned requests
// read with a plain HTTP client, which sees the body the SDK hides).
func TestErrorsNameWhatIsMissing(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	presign := s3.NewPresignClient(admin)
	fetch := func(method, presigned string) s3ErrorNames {
		t.Helper()
		u, err := url.Parse(presigned)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(method, f.App.URL(app.Objects)+u.EscapedPath()+"?"+u.RawQuery, nil)
		req.Host = u.Host // the host it was signed for
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e s3ErrorNames
		b, _ := io.ReadAll(resp.Body)
		if err := xml.Unmarshal(b, &e); err != nil || resp.StatusCode != 404 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		return e
	}
	key, err := presign.PresignGetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("no/such key")}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if e := fetch("GET", key.URL); e.Code != "NoSuchKey" || e.Key != "no/such key" || e.BucketName != "" {
		t.Errorf("missing key: %+v", e)
	}
	b, err := presign.PresignGetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("k")}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if e := fetch("GET", b.URL); e.Code != "NoSuchBucket" || e.BucketName != "no-such-bucket" || e.Key != "" {
		t.Errorf("missing bucket: %+v", e)
	}
	up, err := presign.PresignUploadPart(f.ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("k"), UploadId: aws.String("nope"),
		PartNumber: aws.Int32(1)}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if e := fetch("PUT", up.URL); e.Code != "NoSuchUpload" || e.UploadID != "nope" {
		t.Errorf("missing upload: %+v", e)
	}
}

type s3ErrorNames struct {
	Code, BucketName, Key string
	UploadID              string `xml:"UploadId"`
}

package objects_test

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
)

// putCORS sets the bucket's CORS rules with the SDK.
func (f *fx) putCORS(c *s3.Client, b string, rules ...s3types.CORSRule) error {
	_, err := c.PutBucketCors(f.ctx, &s3.PutBucketCorsInput{Bucket: aws.String(b), CORSConfiguration: &s3types.CORSConfiguration{CORSRules: rules}})
	return err
}

// TestBucketCORSWithSDK: PutBucketCors, GetBucketCors and DeleteBucketCors
// through the SDK (path-style and virtual-hosted): the rules come back as
// put, a bucket without any is 404 NoSuchCORSConfiguration, S3's
// validation errors, the configuration survives a restart and goes with
// its bucket.
func TestBucketCORSWithSDK(t *testing.T) {
	dir := t.TempDir()
	f := &fx{Env: apptest.StartDir(t, dir, apptest.CheapArgon2), t: t, ctx: context.Background()}
	rules := []s3types.CORSRule{
		{ID: aws.String("app"), AllowedOrigins: []string{"https://app.example.com", "http://*.example.org"}, AllowedMethods: []string{"GET", "PUT", "POST"},
			AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag", "x-amz-request-id"}, MaxAgeSeconds: aws.Int32(3000)},
		{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET", "HEAD", "DELETE"}},
	}
	for _, pathStyle := range []bool{true, false} {
		admin := f.client(adminAK, adminSecret, "", pathStyle)
		if _, err := admin.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String(bucket)}); code(err) != "NoSuchCORSConfiguration" || httpStatus(err) != 404 {
			t.Fatalf("path style %v: GetBucketCors without a configuration: %v", pathStyle, err)
		}
		if err := f.putCORS(admin, bucket, rules...); err != nil {
			t.Fatalf("path style %v: PutBucketCors: %v", pathStyle, err)
		}
		got, err := admin.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatalf("path style %v: GetBucketCors: %v", pathStyle, err)
		}
		if !reflect.DeepEqual(got.CORSRules, rules) {
			t.Errorf("path style %v: GetBucketCors: %+v, want %+v", pathStyle, got.CORSRules, rules)
		}
		if _, err := admin.DeleteBucketCors(f.ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("path style %v: DeleteBucketCors: %v", pathStyle, err)
		}
		if _, err := admin.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String(bucket)}); code(err) != "NoSuchCORSConfiguration" {
			t.Errorf("path style %v: GetBucketCors after DeleteBucketCors: %v", pathStyle, err)
		}
		// Deleting what is not there succeeds, as on S3.
		if _, err := admin.DeleteBucketCors(f.ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("path style %v: DeleteBucketCors again: %v", pathStyle, err)
		}
	}
	admin := f.client(adminAK, adminSecret, "", true)
	rule := func(mod func(*s3types.CORSRule)) s3types.CORSRule {
		r := s3types.CORSRule{AllowedOrigins: []string{"https://app.example.com"}, AllowedMethods: []string{"GET"}}
		mod(&r)
		return r
	}
	many := make([]s3types.CORSRule, 101)
	for i := range many {
		many[i] = rule(func(*s3types.CORSRule) {})
	}
	for name, c := range map[string]struct {
		rules []s3types.CORSRule
		want  string
	}{
		"unsupported method": {[]s3types.CORSRule{rule(func(r *s3types.CORSRule) { r.AllowedMethods = []string{"GET", "PATCH"} })}, "InvalidRequest"},
		"two wildcards":      {[]s3types.CORSRule{rule(func(r *s3types.CORSRule) { r.AllowedOrigins = []string{"https://*.*.example.com"} })}, "InvalidRequest"},
		"header wildcards":   {[]s3types.CORSRule{rule(func(r *s3types.CORSRule) { r.AllowedHeaders = []string{"x-*-*"} })}, "InvalidRequest"},
		"expose wildcard":    {[]s3types.CORSRule{rule(func(r *s3types.CORSRule) { r.ExposeHeaders = []string{"*"} })}, "InvalidRequest"},
		"101 rules":          {many, "MalformedXML"},
	} {
		if err := f.putCORS(admin, bucket, c.rules...); code(err) != c.want || httpStatus(err) != 400 {
			t.Errorf("%s: %v, want 400 %s", name, err, c.want)
		}
	}
	if _, err := admin.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String(bucket)}); code(err) != "NoSuchCORSConfiguration" {
		t.Errorf("a refused PutBucketCors stored a configuration: %v", err)
	}
	// What the SDK does not send: no rule, a rule without AllowedOrigin or
	// AllowedMethod, XML that is not a CORSConfiguration, no digest, a wrong one.
	withMD5 := func(body string) map[string]string {
		sum := md5.Sum([]byte(body))
		return map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(sum[:])}
	}
	for _, body := range []string{
		`<CORSConfiguration></CORSConfiguration>`,
		`<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`,
		`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>`,
		`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule></CORSConfiguration>`,
		`<Tagging><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></Tagging>`,
		`<CORSConfiguration><CORSRule>`,
	} {
		if st, resp := f.raw("PUT", "/"+bucket+"?cors", []byte(body), withMD5(body)); st != 400 || errorBody(resp).Code != "MalformedXML" {
			t.Errorf("%s: %d %s", body, st, resp)
		}
	}
	good := `<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`
	if st, resp := f.raw("PUT", "/"+bucket+"?cors", []byte(good), nil); st != 400 || errorBody(resp).Code != "InvalidRequest" {
		t.Errorf("without Content-MD5: %d %s", st, resp)
	}
	if st, resp := f.raw("PUT", "/"+bucket+"?cors", []byte(good), map[string]string{"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}); st != 400 || errorBody(resp).Code != "BadDigest" {
		t.Errorf("with a wrong Content-MD5: %d %s", st, resp)
	}
	if st, resp := f.raw("PUT", "/"+bucket+"/key?cors", []byte(good), withMD5(good)); st != 501 {
		t.Errorf("?cors on an object: %d %s", st, resp)
	}
	if st, resp := f.raw("PUT", "/"+bucket+"?cors", []byte(good), withMD5(good)); st != 200 {
		t.Fatalf("with Content-MD5: %d %s", st, resp)
	}
	if err := f.putCORS(admin, "no-such-bucket", rules...); code(err) != "NoSuchBucket" {
		t.Errorf("PutBucketCors on a missing bucket: %v", err)
	}
	// The configuration is no object: not listed, and not in the way of
	// deleting an otherwise empty bucket, with which it goes.
	l, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil || len(l.Contents) != 0 {
		t.Errorf("listing: %v %+v", err, l)
	}
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("short-lived")}); err != nil {
		t.Fatal(err)
	}
	if err := f.putCORS(admin, "short-lived", rules...); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeleteBucket(f.ctx, &s3.DeleteBucketInput{Bucket: aws.String("short-lived")}); err != nil {
		t.Fatalf("DeleteBucket with a CORS configuration: %v", err)
	}
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("short-lived")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String("short-lived")}); code(err) != "NoSuchCORSConfiguration" {
		t.Errorf("a re-created bucket has the old configuration: %v", err)
	}
	// A restart keeps it.
	if err := f.putCORS(admin, bucket, rules...); err != nil {
		t.Fatal(err)
	}
	f.Stop()
	f = &fx{Env: apptest.StartDir(t, dir, apptest.CheapArgon2), t: t, ctx: context.Background()}
	admin = f.client(adminAK, adminSecret, "", true)
	got, err := admin.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String(bucket)})
	if err != nil || !reflect.DeepEqual(got.CORSRules, rules) {
		t.Errorf("after a restart: %v %+v", err, got)
	}
}

// TestBucketCORSAuthorization: PutBucketCors and DeleteBucketCors need
// s3:PutBucketCORS, GetBucketCors s3:GetBucketCORS, on the bucket: a user
// role without them is refused; a bucket policy granting the role
// s3:GetBucketCORS alone lets it read the configuration, not change it.
func TestBucketCORSAuthorization(t *testing.T) {
	f := &fx{Env: apptest.Start(t, withBucketPolicy(`{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Principal": {"AWS": "`+userRoleARN+`"}, "Action": "s3:GetBucketCORS", "Resource": "arn:aws:s3:::writ-demo"}]}`)),
		t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	b := f.client(bob.ak, bob.secret, bob.token, true)
	rule := s3types.CORSRule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}}
	if err := f.putCORS(b, bucket, rule); code(err) != "AccessDenied" {
		t.Errorf("bob's PutBucketCors: %v", err)
	}
	if err := f.putCORS(admin, bucket, rule); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteBucketCors(f.ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String(bucket)}); code(err) != "AccessDenied" {
		t.Errorf("bob's DeleteBucketCors: %v", err)
	}
	if _, err := b.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String(bucket)}); err != nil {
		t.Errorf("bob's GetBucketCors, which the bucket policy allows: %v", err)
	}
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("other")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String("other")}); code(err) != "AccessDenied" {
		t.Errorf("bob's GetBucketCors of another bucket: %v", err)
	}
	if _, err := admin.GetBucketCors(f.ctx, &s3.GetBucketCorsInput{Bucket: aws.String(bucket)}); err != nil {
		t.Errorf("the configuration is gone: %v", err)
	}
}

// corsRequest sends an unsigned request to the objects listener as Host host.
func (f *fx) corsRequest(method, host, path string, hdr map[string]string) (*http.Response, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.App.URL(app.Objects)+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return f.send(req)
}

// TestCORSPreflightAndActualRequests: preflights, unauthenticated, are
// answered from the first rule allowing origin, method and headers (403
// AccessForbidden without one, or without a configuration); actual
// requests from an allowed origin carry the rule's headers whatever their
// answer, others none. Path-style and virtual-hosted alike.
func TestCORSPreflightAndActualRequests(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("pub.txt"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("no-cors")}); err != nil {
		t.Fatal(err)
	}
	if err := f.putCORS(admin, bucket,
		s3types.CORSRule{ID: aws.String("app"), AllowedOrigins: []string{"http://app.example"}, AllowedMethods: []string{"GET", "PUT"},
			AllowedHeaders: []string{"Content-Type", "x-amz-*"}, ExposeHeaders: []string{"ETag", "x-amz-request-id"}, MaxAgeSeconds: aws.Int32(600)},
		s3types.CORSRule{AllowedOrigins: []string{"http://*.example.org"}, AllowedMethods: []string{"GET"}},
		s3types.CORSRule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET", "HEAD"}, AllowedHeaders: []string{"*"}},
	); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(f.App.Addr(app.Objects))
	type want struct {
		status                                int
		origin, methods, headers, expose, age string
		code                                  string
	}
	check := func(what string, resp *http.Response, body string, w want) {
		t.Helper()
		h := resp.Header
		if resp.StatusCode != w.status || h.Get("Access-Control-Allow-Origin") != w.origin || h.Get("Access-Control-Allow-Methods") != w.methods ||
			h.Get("Access-Control-Allow-Headers") != w.headers || h.Get("Access-Control-Expose-Headers") != w.expose || h.Get("Access-Control-Max-Age") != w.age {
			t.Errorf("%s: %d %v %s, want %+v", what, resp.StatusCode, h, body, w)
		}
		if w.code != "" && errorBody(body).Code != w.code {
			t.Errorf("%s: %s, want %s", what, body, w.code)
		}
		if vary := h.Get("Vary"); (w.origin != "") != strings.Contains(vary, "Origin") {
			t.Errorf("%s: Vary %q", what, vary)
		}
	}
	for _, addr := range []struct{ host, bucketPath, noCORSPath string }{
		{"127.0.0.1:" + port, "/" + bucket, "/no-cors"},
		{bucket + ".localhost:" + port, "", ""},
	} {
		pre := func(path string, hdr map[string]string) (*http.Response, string) {
			return f.corsRequest("OPTIONS", addr.host, path, hdr)
		}
		obj := addr.bucketPath + "/pub.txt"
		resp, body := pre(obj, map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "PUT",
			"Access-Control-Request-Headers": "Content-Type, X-Amz-Date"})
		check(addr.host+" preflight PUT", resp, body, want{200, "http://app.example", "GET, PUT", "content-type, x-amz-date", "ETag, x-amz-request-id", "600", ""})
		if resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("%s preflight PUT: no Access-Control-Allow-Credentials", addr.host)
		}
		// On the bucket itself too; no headers requested, none allowed.
		resp, body = pre(addr.bucketPath+"/", map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "GET"})
		check(addr.host+" bucket preflight", resp, body, want{200, "http://app.example", "GET, PUT", "", "ETag, x-amz-request-id", "600", ""})
		// A header the first rule does not allow: no rule allows PUT then.
		resp, body = pre(obj, map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "PUT",
			"Access-Control-Request-Headers": "authorization"})
		check(addr.host+" header not allowed", resp, body, want{403, "", "", "", "", "", "AccessForbidden"})
		if e := errorBody(body); !strings.HasPrefix(e.Message, "CORSResponse: This CORS request is not allowed") {
			t.Errorf("%s: %s", addr.host, body)
		}
		// The first matching rule wins: the second for *.example.org (no
		// headers allowed, so with one requested the third).
		resp, body = pre(obj, map[string]string{"Origin": "http://a.example.org", "Access-Control-Request-Method": "GET"})
		check(addr.host+" second rule", resp, body, want{200, "http://a.example.org", "GET", "", "", "", ""})
		resp, body = pre(obj, map[string]string{"Origin": "http://a.example.org", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
		check(addr.host+" third rule", resp, body, want{200, "*", "GET, HEAD", "range", "", "", ""})
		resp, body = pre(obj, map[string]string{"Origin": "http://elsewhere.test", "Access-Control-Request-Method": "DELETE"})
		check(addr.host+" method not allowed", resp, body, want{403, "", "", "", "", "", "AccessForbidden"})
		resp, body = pre(obj, map[string]string{"Access-Control-Request-Method": "GET"})
		check(addr.host+" no Origin", resp, body, want{400, "", "", "", "", "", "BadRequest"})
		// Actual requests. Unsigned: refused, with the CORS headers.
		resp, body = f.corsRequest("GET", addr.host, obj, map[string]string{"Origin": "http://app.example"})
		check(addr.host+" unsigned GET", resp, body, want{403, "http://app.example", "GET, PUT", "", "ETag, x-amz-request-id", "600", "AccessDenied"})
		resp, body = f.corsRequest("DELETE", addr.host, obj, map[string]string{"Origin": "http://app.example"})
		check(addr.host+" DELETE, no rule", resp, body, want{403, "", "", "", "", "", "AccessDenied"})
		resp, body = f.corsRequest("GET", addr.host, obj, nil)
		check(addr.host+" no Origin", resp, body, want{403, "", "", "", "", "", "AccessDenied"})
		resp, body = f.corsRequest("HEAD", addr.host, obj, map[string]string{"Origin": "http://else.test"})
		check(addr.host+" HEAD", resp, body, want{403, "*", "GET, HEAD", "", "", "", ""})
		if addr.noCORSPath != "" {
			resp, body = pre(addr.noCORSPath+"/k", map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "GET"})
			check("bucket without a configuration", resp, body, want{403, "", "", "", "", "", "AccessForbidden"})
			resp, body = pre("/missing-bucket/k", map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "GET"})
			check("missing bucket", resp, body, want{403, "", "", "", "", "", "AccessForbidden"})
		}
	}
	// Signed: served, with the CORS headers.
	resp, body := f.rawResp("GET", "/"+bucket+"/pub.txt", nil, map[string]string{"Origin": "http://app.example"})
	check("signed GET", resp, body, want{200, "http://app.example", "GET, PUT", "", "ETag, x-amz-request-id", "600", ""})
	resp, body = f.rawResp("GET", "/no-cors/k", nil, map[string]string{"Origin": "http://app.example"})
	check("signed GET, bucket without a configuration", resp, body, want{404, "", "", "", "", "", "NoSuchKey"})
}

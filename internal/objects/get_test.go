package objects_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
)

// TestGetObjectRanges: one valid range is 206; a range past the end is 416
// InvalidRange as S3 XML with a request id; a Range header S3 ignores
// (malformed, reversed, several ranges) serves the whole object with 200,
// never multipart/byteranges.
func TestGetObjectRanges(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	const body = "0123456789"
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("ranged"), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	path := "/" + bucket + "/ranged"
	cases := []struct {
		rng          string
		status       int
		body, cRange string
	}{
		{"bytes=2-4", 206, "234", "bytes 2-4/10"},
		{"bytes=7-", 206, "789", "bytes 7-9/10"},
		{"bytes=-3", 206, "789", "bytes 7-9/10"},
		{"bytes=-30", 206, body, "bytes 0-9/10"},
		{"bytes=8-100", 206, "89", "bytes 8-9/10"},
		{"junk", 200, body, ""},
		{"bytes=5-2", 200, body, ""},
		{"bytes=abc-", 200, body, ""},
		{"bytes=0-1,3-4", 200, body, ""},
		{"items=0-1", 200, body, ""},
	}
	for _, c := range cases {
		resp, got := f.rawResp("GET", path, nil, map[string]string{"Range": c.rng})
		if resp.StatusCode != c.status || got != c.body || resp.Header.Get("Content-Range") != c.cRange {
			t.Errorf("Range %s: %d %q %q, want %d %q %q", c.rng, resp.StatusCode, got, resp.Header.Get("Content-Range"), c.status, c.body, c.cRange)
		}
		if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/") {
			t.Errorf("Range %s: Content-Type %s", c.rng, ct)
		}
	}
	for _, rng := range []string{"bytes=10-", "bytes=20-30"} {
		resp, got := f.rawResp("GET", path, nil, map[string]string{"Range": rng})
		if resp.StatusCode != 416 || resp.Header.Get("Content-Type") != "application/xml" || !strings.Contains(got, "<Code>InvalidRange</Code>") ||
			resp.Header.Get("x-amz-request-id") == "" {
			t.Errorf("Range %s: %d %s %q", rng, resp.StatusCode, resp.Header.Get("Content-Type"), got)
		}
		if resp, _ := f.rawResp("HEAD", path, nil, map[string]string{"Range": rng}); resp.StatusCode != 416 {
			t.Errorf("HEAD Range %s: %d", rng, resp.StatusCode)
		}
	}
	if _, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("ranged"), Range: aws.String("bytes=10-")}); code(err) != "InvalidRange" {
		t.Errorf("SDK, unsatisfiable range: %v", err)
	}
	out, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("ranged"), Range: aws.String("bytes=0-1,3-4")})
	if err != nil {
		t.Fatalf("SDK, several ranges: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != body {
		t.Errorf("SDK, several ranges: %q", b)
	}
	// A failed precondition is S3 XML too.
	past := f.Clock.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	resp, got := f.rawResp("GET", path, nil, map[string]string{"If-Unmodified-Since": past})
	if resp.StatusCode != 412 || resp.Header.Get("Content-Type") != "application/xml" || !strings.Contains(got, "<Code>PreconditionFailed</Code>") {
		t.Errorf("If-Unmodified-Since in the past: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
}

// TestGetObjectETagConditions: If-Match and If-None-Match of GetObject and
// HeadObject compare as CopyObject's do: *, lists, quoted or bare ETags.
func TestGetObjectETagConditions(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	put, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("tagged"), Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	etag := aws.ToString(put.ETag)
	bare := strings.Trim(etag, `"`)
	other := `"0123456789abcdef0123456789abcdef"`
	cases := []struct {
		name        string
		match, none string
		want        int
	}{
		{"If-Match *", "*", "", 200},
		{"If-Match bare", bare, "", 200},
		{"If-Match list", other + ", " + etag, "", 200},
		{"If-Match another", other, "", 412},
		{"If-None-Match bare", "", bare, 304},
		{"If-None-Match *", "", "*", 304},
		{"If-None-Match list", "", other + "," + bare, 304},
		{"If-None-Match weak", "", "W/" + etag, 304},
		{"If-None-Match another", "", other, 200},
	}
	for _, c := range cases {
		in := s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("tagged")}
		hin := s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("tagged")}
		if c.match != "" {
			in.IfMatch, hin.IfMatch = aws.String(c.match), aws.String(c.match)
		}
		if c.none != "" {
			in.IfNoneMatch, hin.IfNoneMatch = aws.String(c.none), aws.String(c.none)
		}
		out, err := admin.GetObject(f.ctx, &in)
		if err == nil {
			out.Body.Close()
		}
		if got := httpStatus(err); got != c.want {
			t.Errorf("GetObject %s: %d (%v), want %d", c.name, got, err, c.want)
		}
		_, err = admin.HeadObject(f.ctx, &hin)
		if got := httpStatus(err); got != c.want {
			t.Errorf("HeadObject %s: %d (%v), want %d", c.name, got, err, c.want)
		}
	}
}

// TestGetObjectResponseHeaderOverrides: the response-* parameters of
// GetObject and HeadObject (from the SDK, and in a presigned URL fetched
// as a browser would) set the headers served, never what is stored; a
// value with CR/LF is InvalidArgument, no injected header; an anonymous
// request may not use them (InvalidRequest), as S3 answers.
func TestGetObjectResponseHeaderOverrides(t *testing.T) {
	f := &fx{Env: apptest.Start(t, withBucketPolicy(`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
		"Action": "s3:GetObject", "Resource": "arn:aws:s3:::writ-demo/public/*"}]}`)), t: t, ctx: context.Background()}
	admin := f.clientAt(f.App.URL(app.Objects), true) // presigned URLs of it are fetched as they are
	b, k := aws.String(bucket), aws.String("public/report.csv")
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("a,b\n"), ContentType: aws.String("text/csv")}); err != nil {
		t.Fatal(err)
	}
	expires := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	want := map[string]string{"Content-Type": "application/octet-stream", "Content-Language": "de-CH", "Expires": expires.Format(http.TimeFormat),
		"Cache-Control": "no-store", "Content-Disposition": `attachment; filename="Bericht 2026.csv"`, "Content-Encoding": "identity"}
	in := &s3.GetObjectInput{Bucket: b, Key: k, ResponseContentType: aws.String(want["Content-Type"]),
		ResponseContentLanguage: aws.String(want["Content-Language"]), ResponseExpires: aws.Time(expires),
		ResponseCacheControl: aws.String(want["Cache-Control"]), ResponseContentDisposition: aws.String(want["Content-Disposition"]),
		ResponseContentEncoding: aws.String(want["Content-Encoding"])}
	check := func(what string, got map[string]string) {
		t.Helper()
		for h, v := range want {
			if got[h] != v {
				t.Errorf("%s: %s %q, want %q", what, h, got[h], v)
			}
		}
	}
	out, err := admin.GetObject(f.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "a,b\n" {
		t.Errorf("GetObject with overrides: body %q", body)
	}
	check("GetObject", map[string]string{"Content-Type": aws.ToString(out.ContentType), "Content-Language": aws.ToString(out.ContentLanguage),
		"Expires": aws.ToString(out.ExpiresString), "Cache-Control": aws.ToString(out.CacheControl),
		"Content-Disposition": aws.ToString(out.ContentDisposition), "Content-Encoding": aws.ToString(out.ContentEncoding)})
	head, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: b, Key: k, ResponseContentType: in.ResponseContentType,
		ResponseContentLanguage: in.ResponseContentLanguage, ResponseExpires: in.ResponseExpires, ResponseCacheControl: in.ResponseCacheControl,
		ResponseContentDisposition: in.ResponseContentDisposition, ResponseContentEncoding: in.ResponseContentEncoding})
	if err != nil {
		t.Fatal(err)
	}
	check("HeadObject", map[string]string{"Content-Type": aws.ToString(head.ContentType), "Content-Language": aws.ToString(head.ContentLanguage),
		"Expires": aws.ToString(head.ExpiresString), "Cache-Control": aws.ToString(head.CacheControl),
		"Content-Disposition": aws.ToString(head.ContentDisposition), "Content-Encoding": aws.ToString(head.ContentEncoding)})
	// A presigned URL carries the overrides in its signed query.
	ps, err := s3.NewPresignClient(admin).PresignGetObject(f.ctx, in, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ps.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "a,b\n" {
		t.Errorf("presigned GET with overrides: %d %q", resp.StatusCode, body)
	}
	got := map[string]string{}
	for h := range want {
		got[h] = resp.Header.Get(h)
	}
	check("presigned GET", got)
	// What is stored is unchanged.
	plain, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: b, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if aws.ToString(plain.ContentType) != "text/csv" || plain.ContentLanguage != nil || plain.ExpiresString != nil || plain.CacheControl != nil ||
		plain.ContentDisposition != nil || plain.ContentEncoding != nil {
		t.Errorf("plain GetObject after overrides: %s %v %v %v %v %v", aws.ToString(plain.ContentType), plain.ContentLanguage, plain.ExpiresString,
			plain.CacheControl, plain.ContentDisposition, plain.ContentEncoding)
	}
	// CR/LF in a value: S3 XML InvalidArgument, nothing injected.
	bad := &s3.GetObjectInput{Bucket: b, Key: k, ResponseContentDisposition: aws.String("attachment\r\nX-Injected: yes")}
	if _, err := admin.GetObject(f.ctx, bad); code(err) != "InvalidArgument" {
		t.Errorf("GetObject, CR/LF in an override: %v", err)
	}
	ps, err = s3.NewPresignClient(admin).PresignGetObject(f.ctx, bad, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(ps.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "<Code>InvalidArgument</Code>") || resp.Header.Get("X-Injected") != "" ||
		strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("presigned GET, CR/LF in an override: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	// Anonymous: the public object is served, but not with overrides.
	anon := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.App.URL(app.Objects)), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	if out, err := anon.GetObject(f.ctx, &s3.GetObjectInput{Bucket: b, Key: k}); err != nil {
		t.Fatalf("anonymous GetObject: %v", err)
	} else {
		out.Body.Close()
	}
	if _, err := anon.GetObject(f.ctx, &s3.GetObjectInput{Bucket: b, Key: k, ResponseContentType: aws.String("text/html")}); code(err) != "InvalidRequest" {
		t.Errorf("anonymous GetObject with an override: %v", err)
	}
}

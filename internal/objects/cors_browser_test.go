package objects_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/chromedp/chromedp"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
)

// chrome starts headless Chromium from WRIT_TEST_CHROMIUM, or skips;
// *.localhost is sent to the loopback address, for virtual-hosted URLs.
func chrome(t *testing.T) context.Context {
	t.Helper()
	return apptest.Chrome(t, chromedp.Flag("host-resolver-rules", "MAP *.localhost 127.0.0.1"))
}

// browserPage serves a page that runs script (which answers a promise of
// a string) and shows its answer in #result.
const browserPage = `<!doctype html><html><body><script>
(async () => { %s })().catch(e => e.name + ": " + e.message).then(v => {
  const p = document.createElement("p"); p.id = "result"; p.textContent = v; document.body.appendChild(p);
});
</script></body></html>`

// TestBrowserUploadsWithPresignedURLs: a page of another (loopback)
// origin uploads an object with fetch(PUT presigned URL) and reads it back
// with fetch(GET presigned URL, virtual-hosted): refused by the browser
// (TypeError) while the bucket has no CORS rule for the page's origin,
// working once it has one.
func TestBrowserUploadsWithPresignedURLs(t *testing.T) {
	ctx := chrome(t)
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	_, port, _ := net.SplitHostPort(f.App.Addr(app.Objects))
	pathStyle := f.clientAt("http://127.0.0.1:"+port, true)
	vhosted := f.clientAt("http://localhost:"+port, false)
	var script atomic.Value // the page's script, set by run
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, browserPage, script.Load())
	}))
	t.Cleanup(page.Close)
	run := func(s string) string {
		t.Helper()
		script.Store(s)
		var res string
		if err := chromedp.Run(ctx, chromedp.Navigate(page.URL), chromedp.WaitVisible("#result", chromedp.ByID), chromedp.Text("#result", &res, chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
		return res
	}
	presign := func(key string) (put, get string) {
		ps := s3.NewPresignClient(pathStyle)
		p, err := ps.PresignPutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		g, err := s3.NewPresignClient(vhosted).PresignGetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(g.URL, "//"+bucket+".localhost:") {
			t.Fatalf("not virtual-hosted: %s", g.URL)
		}
		return p.URL, g.URL
	}
	js := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	upload := func(put, get, body string) string {
		return run(`const put = await fetch(` + js(put) + `, {method: "PUT", body: ` + js(body) + `});
if (!put.ok) return "PUT " + put.status;
const get = await fetch(` + js(get) + `);
if (!get.ok) return "GET " + get.status;
return "read " + (await get.text()) + " etag " + get.headers.get("ETag");`)
	}
	// Without a configuration: the preflight of the PUT fails, so does the
	// GET of an object that exists (its answer is withheld from the page).
	put, get := presign("from-the-page.txt")
	if res := upload(put, get, "hello from the page"); !strings.HasPrefix(res, "TypeError") {
		t.Errorf("PUT without CORS: %q, want a TypeError", res)
	}
	if f.exists(pathStyle, bucket, "from-the-page.txt") {
		t.Error("a PUT whose preflight failed stored the object")
	}
	if _, err := pathStyle.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("existing.txt"), Body: strings.NewReader("already there")}); err != nil {
		t.Fatal(err)
	}
	_, getExisting := presign("existing.txt")
	if res := run(`const r = await fetch(` + js(getExisting) + `); return "read " + await r.text();`); !strings.HasPrefix(res, "TypeError") {
		t.Errorf("GET without CORS: %q, want a TypeError", res)
	}
	// A rule for another origin changes nothing.
	if err := f.putCORS(pathStyle, bucket, s3types.CORSRule{AllowedOrigins: []string{"http://app.example"}, AllowedMethods: []string{"GET", "PUT"}, AllowedHeaders: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	if res := upload(put, get, "hello from the page"); !strings.HasPrefix(res, "TypeError") {
		t.Errorf("PUT with a rule for another origin: %q, want a TypeError", res)
	}
	// A rule for the page's origin.
	if err := f.putCORS(pathStyle, bucket, s3types.CORSRule{AllowedOrigins: []string{page.URL}, AllowedMethods: []string{"GET", "PUT"},
		AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag"}, MaxAgeSeconds: aws.Int32(60)}); err != nil {
		t.Fatal(err)
	}
	res := upload(put, get, "hello from the page")
	if !strings.HasPrefix(res, `read hello from the page etag "`) {
		t.Fatalf("with CORS: %q", res)
	}
	out, err := pathStyle.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("from-the-page.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "hello from the page" || !strings.HasSuffix(res, aws.ToString(out.ETag)) {
		t.Errorf("stored %q %s; the page saw %q", b, aws.ToString(out.ETag), res)
	}
}

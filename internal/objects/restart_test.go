package objects_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/writ-id/writ/internal/apptest"
)

// TestRestartKeepsEveryObject: the sweep at start removes only what cut
// writes left, never an object — also not one whose key looks like the
// staging names earlier versions used.
func TestRestartKeepsEveryObject(t *testing.T) {
	dir := t.TempDir()
	f := &fx{Env: apptest.StartDir(t, dir, apptest.CheapArgon2), t: t, ctx: context.Background()}
	keys := []string{".staging/0191e2a4-7c1b-7d3e-8f00-123456789abc", ".uploads/x", "plain.txt", ".tmp-1"}
	admin := f.client(adminAK, adminSecret, "", true)
	for _, k := range keys {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader("body of " + k)}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	f.Stop()
	f = &fx{Env: apptest.StartDir(t, dir, apptest.CheapArgon2), t: t, ctx: context.Background()}
	admin = f.client(adminAK, adminSecret, "", true)
	for _, k := range keys {
		out, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("%s after restart: %v", k, err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(b) != "body of "+k {
			t.Fatalf("%s after restart: %q", k, b)
		}
	}
}

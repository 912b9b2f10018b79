package objects_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
)

// clientAt is an admin S3 client of endpoint whose connections all go to
// the objects listener, whatever host the SDK puts in front of it.
func (f *fx) clientAt(endpoint string, pathStyle bool) *s3.Client {
	addr := f.App.Addr(app.Objects)
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}}}
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: pathStyle,
		Credentials: credentials.NewStaticCredentialsProvider(adminAK, adminSecret, ""), HTTPClient: hc, RetryMaxAttempts: 1})
}

// TestVirtualHostedMissingBucket: whether a request is virtual-hosted is
// decided by its Host, not by whether the bucket exists: a missing bucket
// addressed virtual-hosted is NoSuchBucket (its request is never served as
// a path-style one, into another bucket), and CreateBucket creates it. For
// the endpoints the SDK is pointed at: localhost, an s3.* name, and the
// listener's configured public URL.
func TestVirtualHostedMissingBucket(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	_, port, _ := net.SplitHostPort(f.App.Addr(app.Objects))
	f.checkVirtualHosting(t, "http://localhost:"+port, "a")
	f.checkVirtualHosting(t, "http://s3.writ.test:"+port, "b")

	g := &fx{Env: apptest.Start(t, func(c *config.Config) { c.Serve.Objects.PublicURL = "http://objects.example.test" }), t: t, ctx: context.Background()}
	g.checkVirtualHosting(t, "http://objects.example.test", "c")
	// With a public URL, it alone decides: a cluster-internal name with an
	// s3 label (a namespace named s3) is path-style, not bucket "objects".
	internal := g.clientAt("http://objects.s3.svc.cluster.local", true)
	if _, err := internal.PutObject(g.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("internal.txt"), Body: strings.NewReader("x")}); err != nil {
		t.Errorf("path-style through objects.s3.svc.cluster.local: %v", err)
	}
}

func (f *fx) checkVirtualHosting(t *testing.T, endpoint, suffix string) {
	t.Helper()
	vc, pc := f.clientAt(endpoint, false), f.clientAt(endpoint, true)
	// PutObject into a missing bucket, with a key that path-style would read
	// as bucket/key of the existing bucket.
	_, err := vc.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("nonexistent-bkt"), Key: aws.String(bucket + "/stolen"), Body: strings.NewReader("x")})
	if code(err) != "NoSuchBucket" {
		t.Errorf("%s: PutObject into a missing bucket: %v", endpoint, err)
	}
	if f.exists(pc, bucket, "stolen") {
		t.Errorf("%s: the PutObject into a missing bucket wrote into %s", endpoint, bucket)
	}
	if _, err := vc.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nonexistent-bkt")}); code(err) != "NoSuchBucket" {
		t.Errorf("%s: ListObjectsV2 of a missing bucket: %v", endpoint, err)
	}
	if _, err := vc.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("nonexistent-bkt"), Key: aws.String(bucket + "/x")}); code(err) != "NoSuchBucket" {
		t.Errorf("%s: GetObject of a missing bucket: %v", endpoint, err)
	}
	// CreateBucket virtual-hosted; the new bucket serves both ways.
	nb := "created-virtually-" + suffix
	if _, err := vc.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String(nb)}); err != nil {
		t.Fatalf("%s: CreateBucket virtual-hosted: %v", endpoint, err)
	}
	if _, err := vc.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(nb), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("%s: PutObject virtual-hosted: %v", endpoint, err)
	}
	out, err := pc.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(nb), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("%s: GetObject path-style: %v", endpoint, err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "v" {
		t.Errorf("%s: GetObject: %q", endpoint, b)
	}
	// The endpoint's own host is path-style: ListBuckets and a path-style list.
	lb, err := pc.ListBuckets(f.ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) < 2 {
		t.Errorf("%s: ListBuckets: %v %+v", endpoint, err, lb)
	}
	if l, err := pc.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(nb)}); err != nil || len(l.Contents) != 1 {
		t.Errorf("%s: ListObjectsV2 path-style: %v %+v", endpoint, err, l)
	}
}

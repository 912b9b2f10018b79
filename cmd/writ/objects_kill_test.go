package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// adminS3 is an S3 client with the reference configuration's admin keys
// and the checksum default of config.LoadDefaultConfig (CRC32 on every
// PutObject: a header over HTTP, an aws-chunked trailer over HTTPS).
func adminS3(endpoint string, hc *http.Client) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true, HTTPClient: hc, RetryMaxAttempts: 1,
		Credentials:                credentials.NewStaticCredentialsProvider("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported})
}

// throttled hands its data to the SDK at rate bytes/s, counting what it
// gave. Seekable, it is read at full speed until its first EOF (the SDK's
// checksum pass over a plain-HTTP body) and throttled from then on (the
// upload itself); otherwise it is a stream (aws-chunked over HTTPS).
type throttled struct {
	data     []byte
	off      int
	rate     int
	seekable bool
	slow     bool
	sent     atomic.Int64
}

func (t *throttled) Read(p []byte) (int, error) {
	if t.off >= len(t.data) {
		t.slow = true
		return 0, io.EOF
	}
	if !t.slow && t.seekable {
		n := copy(p, t.data[t.off:])
		t.off += n
		return n, nil
	}
	p = p[:min(len(p), 64<<10)]
	n := copy(p, t.data[t.off:])
	t.off += n
	t.sent.Add(int64(n))
	time.Sleep(time.Duration(n) * time.Second / time.Duration(t.rate))
	return n, nil
}

type seekableThrottled struct{ *throttled }

func (s seekableThrottled) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.off = int(off)
	case io.SeekCurrent:
		s.off += int(off)
	case io.SeekEnd:
		s.off = len(s.data) + int(off)
	}
	return int64(s.off), nil
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// TestKill9DuringPutObject kills writ with SIGKILL while large PutObjects
// stream in (plain HTTP with a SHA-256 payload, and aws-chunked bodies
// through a TLS-terminating proxy), some of them overwriting complete
// objects, while small PutObjects are being acknowledged. After a restart
// on the same data_dir every key is absent or exactly one complete body,
// an overwritten object is the old or the new one, never a mix, every
// acknowledged PutObject is there, and nothing staged is listed or left on
// disk.
func TestKill9DuringPutObject(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := startServe(t, cfg)
	objectsURL := func(s *server) string {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if u := s.url("objects"); u != "" {
				return u
			}
		}
		t.Fatalf("objects listener not up\n%s", s.log())
		return ""
	}
	ctx := context.Background()
	plain := adminS3(objectsURL(s), &http.Client{})
	// A TLS-terminating proxy in front, as a load balancer: over HTTPS the
	// SDK streams aws-chunked bodies with a trailing checksum.
	target, _ := url.Parse(objectsURL(s))
	var chunked atomic.Int64
	lb := httptest.NewTLSServer(&httputil.ReverseProxy{ErrorLog: log.New(io.Discard, "", 0), Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // signed
		if pr.In.Header.Get("X-Amz-Content-Sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
			chunked.Add(1)
		}
	}})
	defer lb.Close()
	tlsc := adminS3(lb.URL, lb.Client())

	const size = 32 << 20
	body := func(seed uint64) []byte {
		b := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
		return b
	}
	old, fresh := body(1), body(2)
	bucket := aws.String("writ-demo")
	put := func(c *s3.Client, key string, r io.Reader) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(key), Body: r, ContentLength: aws.Int64(size)})
		return err
	}
	// Complete objects before the kill: one left alone, two to be overwritten.
	for _, k := range []string{"kept", "overwrite-http", "overwrite-tls"} {
		if err := put(plain, k, bytes.NewReader(old)); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}

	// Slow uploads, killed midway: overwrites and new keys, both payload modes.
	type upload struct {
		key   string
		r     *throttled
		acked atomic.Bool
	}
	var ups []*upload
	var wg sync.WaitGroup
	for _, k := range []string{"overwrite-http", "overwrite-tls", "new-http", "new-tls"} {
		u := &upload{key: k, r: &throttled{data: fresh, rate: 8 << 20, seekable: strings.HasSuffix(k, "-http")}}
		ups = append(ups, u)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if u.r.seekable {
				err = put(plain, u.key, seekableThrottled{u.r})
			} else {
				err = put(tlsc, u.key, u.r)
			}
			u.acked.Store(err == nil)
		}()
	}
	// Small PutObjects acknowledged up to the kill.
	small := func(i int) []byte { return []byte(strings.Repeat(fmt.Sprintf("object %d;", i), 2000)) }
	var mu sync.Mutex
	var acked []int
	sctx, stop := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; sctx.Err() == nil; i++ {
			_, err := plain.PutObject(sctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(fmt.Sprintf("small/%04d", i)), Body: bytes.NewReader(small(i))})
			if err == nil {
				mu.Lock()
				acked = append(acked, i)
				mu.Unlock()
			}
		}
	}()
	// Kill once every slow upload is a few MiB in (however slow the machine).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ready := true
		for _, u := range ups {
			ready = ready && u.r.sent.Load() >= 4<<20
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow uploads did not get going\n%s", s.log())
		}
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	stop()
	wg.Wait()
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	midway := 0
	for _, u := range ups {
		if !u.acked.Load() {
			midway++
		}
		t.Logf("%s: %d of %d MiB sent, acknowledged %v", u.key, u.r.sent.Load()>>20, size>>20, u.acked.Load())
	}
	if chunked.Load() < 2 {
		t.Fatalf("%d aws-chunked uploads through the TLS proxy, want 2", chunked.Load())
	}
	if midway == 0 || nAcked == 0 {
		t.Fatalf("the kill came too late (%d uploads cut) or too early (%d small puts acknowledged)", midway, nAcked)
	}

	s2 := startServe(t, cfg)
	c := adminS3(objectsURL(s2), &http.Client{})
	get := func(key string) (data []byte, etag string, found bool) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(key)})
		if apiErrCode(err) == "NoSuchKey" {
			return nil, "", false
		}
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		if e := aws.ToString(out.ETag); e != `"`+md5hex(b)+`"` {
			t.Errorf("%s: ETag %s is not the MD5 of its %d bytes", key, e, len(b))
		}
		return b, aws.ToString(out.ETag), true
	}
	// Every key the listing names, and no other, is a complete body.
	want := map[string][][]byte{"kept": {old}, "overwrite-http": {old, fresh}, "overwrite-tls": {old, fresh}, "new-http": {nil, fresh}, "new-tls": {nil, fresh}}
	listed := map[string]string{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			listed[aws.ToString(o.Key)] = aws.ToString(o.ETag)
		}
	}
	for k := range listed {
		if _, ok := want[k]; !ok && !strings.HasPrefix(k, "small/") {
			t.Errorf("listing names %q, which no client wrote", k)
		}
	}
	for _, u := range ups {
		if u.acked.Load() {
			want[u.key] = [][]byte{fresh} // acknowledged: must be the new body
		}
	}
	for k, bodies := range want {
		b, etag, found := get(k)
		if found != (listed[k] != "") || (found && etag != listed[k]) {
			t.Errorf("%s: found %v (ETag %s) but listed with ETag %q", k, found, etag, listed[k])
		}
		ok := false
		for _, w := range bodies {
			ok = ok || (w == nil && !found) || (w != nil && found && bytes.Equal(b, w))
		}
		if !ok {
			t.Errorf("%s: after SIGKILL found=%v, %d bytes (md5 %s); old md5 %s, new md5 %s", k, found, len(b), md5hex(b), md5hex(old), md5hex(fresh))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, i := range acked {
		k := fmt.Sprintf("small/%04d", i)
		if b, _, found := get(k); !found || !bytes.Equal(b, small(i)) {
			t.Errorf("acknowledged %s lost or changed after SIGKILL (found %v, %d bytes)", k, found, len(b))
		}
	}
	for k := range listed {
		var i int
		if _, err := fmt.Sscanf(k, "small/%04d", &i); err == nil {
			if b, _, _ := get(k); !bytes.Equal(b, small(i)) {
				t.Errorf("%s (in flight at the kill) is not its complete body", k)
			}
		}
	}
	// What the cut uploads staged is gone from disk: one data file and one
	// metadata file per listed object, no temporary files.
	entries, err := os.ReadDir(filepath.Join(dir, "writ-data", "objects", "writ-demo"))
	if err != nil {
		t.Fatal(err)
	}
	var data, metas int
	for _, e := range entries {
		switch n := e.Name(); {
		case e.IsDir():
		case n == "bucket-created": // the bucket's creation time (ListBuckets)
		case strings.HasSuffix(n, ".data"):
			data++
		case strings.HasSuffix(n, ".json"):
			metas++
		default:
			t.Errorf("left on disk after restart: %s", n)
		}
	}
	if data != len(listed) || metas != len(listed) {
		t.Errorf("on disk after restart: %d data and %d metadata files for %d objects", data, metas, len(listed))
	}
	t.Logf("%d uploads cut by SIGKILL, %d small PutObjects acknowledged, %d objects after restart", midway, nAcked, len(listed))
}

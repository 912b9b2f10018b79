package objects_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/objects"
)

// BenchmarkObjects measures GetObject and PutObject of 4 KiB and 1 MiB
// objects through the SDK's s3 client (SigV4 signed with identity-pool
// credentials of bob, in his own prefix) from 8 concurrent clients against
// three servers over the same data dir:
//
//	no-auth   objects.New with NoAuth: no SigV4 verification, no IAM
//	auth      objects.New as writ builds it: SigV4 + IAM, no audit trail
//	served    the object listener of a running writ (auth, audit, metrics)
//
// The servers take turns in blocks of 64 requests within one sub-benchmark,
// so a busy machine slows them alike. Each sub-benchmark reports ops/s and
// CPU µs per request (client and server share the machine) per server and
// the throughput ratios auth/no-auth and served/no-auth; its ns/op is per
// request of any server.
func BenchmarkObjects(b *testing.B) {
	f := &fx{Env: apptest.Start(b), t: b, ctx: context.Background()}
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	serve := func(opts objects.Options) string {
		h, err := objects.New(f.Cfg, opts)
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(h)
		b.Cleanup(srv.Close)
		return srv.URL
	}
	type target struct {
		name string
		c    *s3.Client
	}
	var targets []target
	for _, s := range []struct{ name, url string }{
		{"no-auth", serve(objects.Options{STS: f.App.STS, Now: f.Clock.Now, NoAuth: true})},
		{"auth", serve(objects.Options{STS: f.App.STS, Now: f.Clock.Now})},
		{"served", f.App.URL(app.Objects)},
	} {
		targets = append(targets, target{s.name, s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), UsePathStyle: true, RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(bob.ak, bob.secret, bob.token),
			HTTPClient:  &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}}})})
	}
	const clients, block = 8, 64
	prefix := "private/" + bob.id + "/bench/"
	for _, size := range []int{4 << 10, 1 << 20} {
		data := randomBytes(size, 3)
		label := fmt.Sprintf("%dKiB", size>>10)
		if size >= 1<<20 {
			label = fmt.Sprintf("%dMiB", size>>20)
		}
		getKey := prefix + "get-" + label
		for _, t := range targets {
			if _, err := t.c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(getKey), Body: bytes.NewReader(data)}); err != nil {
				b.Fatalf("%s: %v", t.name, err)
			}
		}
		var seq atomic.Int64
		ops := map[string]func(c *s3.Client) error{
			"GET": func(c *s3.Client) error {
				out, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(getKey)})
				if err != nil {
					return err
				}
				defer out.Body.Close()
				if n, err := io.Copy(io.Discard, out.Body); err != nil || n != int64(size) {
					return fmt.Errorf("read %d bytes: %v", n, err)
				}
				return nil
			},
			"PUT": func(c *s3.Client) error {
				key := fmt.Sprintf("%sput-%s-%d", prefix, label, seq.Add(1)%64)
				_, err := c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
				return err
			},
		}
		for _, op := range []string{"GET", "PUT"} {
			b.Run(op+"-"+label, func(b *testing.B) {
				b.SetBytes(int64(size))
				names := make([]string, len(targets))
				for i, t := range targets {
					names[i] = t.name
				}
				rates := apptest.TakeTurns(b, names, clients, block, func(i int) error { return ops[op](targets[i].c) })
				rate := func(i int) float64 { return rates[i] }
				b.ReportMetric(rate(1)/rate(0), "auth/no-auth")
				b.ReportMetric(rate(2)/rate(0), "served/no-auth")
			})
		}
	}
}

// BenchmarkObjectsHandler is the server's side alone: one SDK-signed
// GetObject of 4 KiB replayed into the handler (no network, no client
// work), with and without authorization, so the cost of SigV4 + IAM per
// request shows without the client's noise.
func BenchmarkObjectsHandler(b *testing.B) {
	f := &fx{Env: apptest.Start(b), t: b, ctx: context.Background()}
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	key := "private/" + bob.id + "/bench/handler-4KiB"
	if _, err := f.client(bob.ak, bob.secret, bob.token, true).PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(randomBytes(4<<10, 4))}); err != nil {
		b.Fatal(err)
	}
	// Capture the request the SDK sends.
	var captured *http.Request
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		captured = r.Clone(context.Background())
		w.WriteHeader(500)
	}))
	defer capture.Close()
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(capture.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(bob.ak, bob.secret, bob.token)})
	c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if captured == nil {
		b.Fatal("no request captured")
	}
	for _, noAuth := range []bool{true, false} {
		h, err := objects.New(f.Cfg, objects.Options{STS: f.App.STS, Now: f.Clock.Now, NoAuth: noAuth})
		if err != nil {
			b.Fatal(err)
		}
		name := "auth"
		if noAuth {
			name = "no-auth"
		}
		b.Run("GET-4KiB/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, captured.Clone(context.Background()))
				if rec.Code != 200 || rec.Body.Len() != 4<<10 {
					b.Fatalf("%d %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}

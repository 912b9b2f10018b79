package oidc_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
)

func benchPost(b *testing.B, hc *http.Client, u string, form url.Values, user, pass string) {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

func benchFixture(b *testing.B) *fx {
	env := apptest.Start(b)
	return &fx{Env: env, t: b, iss: env.App.URL(app.IDP) + "/" + poolID, ctx: context.Background()}
}

var ccForm = url.Values{"grant_type": {"client_credentials"}}

// BenchmarkClientCredentials measures client_credentials grants through
// the HTTP token endpoint (ES256, client_secret_basic, SQLite store), one
// request at a time; the client runs in the same process, so with -cpu 1
// client and server share one core.
func BenchmarkClientCredentials(b *testing.B) {
	f := benchFixture(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	start := time.Now()
	for b.Loop() {
		benchPost(b, hc, f.iss+"/oauth2/token", ccForm, "orders-service", "orders-demo-secret")
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "grants/s")
}

// BenchmarkClientCredentialsParallel is BenchmarkClientCredentials with
// concurrent requests (GOMAXPROCS of them), the throughput of all cores.
func BenchmarkClientCredentialsParallel(b *testing.B) {
	f := benchFixture(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, hc, f.iss+"/oauth2/token", ccForm, "orders-service", "orders-demo-secret")
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "grants/s")
}

// BenchmarkTokenExchange measures RFC 8693 exchanges of alice's access
// token through the token endpoint: client authentication, verification of
// the subject token, its revocation check and signing.
func BenchmarkTokenExchange(b *testing.B) {
	f := benchFixture(b)
	at := aws.ToString(f.alice().AccessToken)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {at},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {"files-service"}}
	start := time.Now()
	for b.Loop() {
		benchPost(b, hc, f.iss+"/oauth2/token", form, "api-gateway", "gateway-demo-secret")
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "exchanges/s")
}

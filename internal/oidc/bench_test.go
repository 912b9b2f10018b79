package oidc_test

import (
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

// BenchmarkClientCredentials measures client_credentials grants through the
// HTTP token endpoint (ES256), one client at a time (≈ one core).
func BenchmarkClientCredentials(b *testing.B) {
	env := apptest.Start(b)
	u := env.App.URL(app.IDP) + "/" + poolID + "/oauth2/token"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	form := url.Values{"grant_type": {"client_credentials"}}
	start := time.Now()
	for b.Loop() {
		benchPost(b, hc, u, form, "orders-service", "orders-demo-secret")
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "grants/s")
}

// BenchmarkTokenExchange measures RFC 8693 exchanges through the endpoint.
func BenchmarkTokenExchange(b *testing.B) {
	f := &fx{Env: apptest.Start(b), t: b}
	f.iss = f.App.URL(app.IDP) + "/" + poolID
	f.ctx = b.Context()
	at := aws.ToString(aliceFor(b, f).AccessToken)
	u := f.iss + "/oauth2/token"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {at},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {"files-service"}}
	start := time.Now()
	for b.Loop() {
		benchPost(b, hc, u, form, "api-gateway", "gateway-demo-secret")
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "exchanges/s")
}

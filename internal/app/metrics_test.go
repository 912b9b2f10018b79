package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	dto "github.com/prometheus/client_model/go"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
)

func scrape(t *testing.T, env *apptest.Env) map[string]*dto.MetricFamily {
	return apptest.ScrapeMetrics(t, env.App.URL(app.Ops))
}

// value sums the samples of a family whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	sum := 0.0
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == k && l.GetValue() == v)
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	env := apptest.Start(t)
	before := scrape(t, env)
	c := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.App.URL(app.IDP)), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	ctx := context.Background()
	login := func(pw string) string {
		out, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
			AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": pw}})
		if err != nil || out.AuthenticationResult == nil {
			return ""
		}
		return aws.ToString(out.AuthenticationResult.AccessToken)
	}
	access := login("Bob-Passw0rd1")
	login("wrong-Passw0rd1")
	login("wrong-Passw0rd2")
	// A malformed token, then bob's (valid, lacking the route's scope) twice:
	// verified once, then from the cache.
	for _, tok := range []string{"not-a-token", access, access} {
		req, _ := http.NewRequest("GET", env.App.URL(app.Gateway)+"/orders/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	env.App.Core.Audit.Flush(ctx)
	after := scrape(t, env)
	checks := []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"writ_http_requests_total", map[string]string{"component": "idp", "operation": "InitiateAuth", "code": "200"}, 1},
		{"writ_http_requests_total", map[string]string{"component": "idp", "operation": "InitiateAuth", "code": "400"}, 2},
		{"writ_http_request_duration_seconds", map[string]string{"component": "idp", "operation": "InitiateAuth"}, 3},
		{"writ_audit_events_total", map[string]string{"component": "idp", "action": "InitiateAuth", "outcome": "deny"}, 2},
		{"writ_audit_events_total", map[string]string{"component": "idp", "action": "InitiateAuth", "outcome": "allow"}, 1},
		{"writ_audit_events_total", map[string]string{"component": "gateway", "outcome": "deny"}, 3},
		{"writ_http_requests_total", map[string]string{"component": "gateway", "operation": "GET /orders/{id}", "code": "401"}, 1},
		{"writ_http_requests_total", map[string]string{"component": "gateway", "operation": "GET /orders/{id}", "code": "403"}, 2},
		{"writ_token_verifications_total", map[string]string{"component": "gateway", "result": "malformed"}, 1},
		{"writ_token_verifications_total", map[string]string{"component": "gateway", "result": "valid"}, 2},
		{"writ_verified_token_cache_misses_total", map[string]string{"component": "gateway"}, 2}, // the malformed one too
		{"writ_verified_token_cache_hits_total", map[string]string{"component": "gateway"}, 1},
	}
	for _, ck := range checks {
		if d := value(after, ck.name, ck.labels) - value(before, ck.name, ck.labels); d != ck.delta {
			t.Errorf("%s%v moved by %v, want %v", ck.name, ck.labels, d, ck.delta)
		}
	}
	if v := value(after, "writ_signing_key_age_seconds", map[string]string{"pool": "us-east-1_WritDemo1"}); v < 0 {
		t.Errorf("signing key age %v", v)
	}
	if _, ok := after["writ_jwks_fetches_total"]; !ok {
		t.Error("no JWKS fetch counter")
	}
	for name := range after {
		if strings.Contains(name, "password") {
			t.Errorf("suspicious metric name %s", name)
		}
	}
}

package cognito_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/userpool"
)

type benchClient struct {
	b   *testing.B
	url string
	hc  *http.Client
}

func newBench(b *testing.B, argon userpool.Argon2Params) *benchClient {
	env := apptest.StartArgon2(b, argon)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	return &benchClient{b: b, url: env.App.URL(app.IDP) + "/", hc: &http.Client{Transport: tr}}
}

func (c *benchClient) call(op string, in any) map[string]any {
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest("POST", c.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+op)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.b.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.b.Fatalf("%s: %d %s", op, resp.StatusCode, b)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// BenchmarkUserPasswordAuth measures USER_PASSWORD_AUTH through the HTTP
// handler at the production argon2id cost, and reports it next to the raw
// argon2id rate at the same parameters measured in the same run: the
// ratio shows what the rest of a login costs beyond the password hash.
func BenchmarkUserPasswordAuth(b *testing.B) {
	p := userpool.DefaultArgon2
	hash := userpool.HashPassword("Bob-Passw0rd1", p)
	t0 := time.Now()
	const rawN = 20
	for i := 0; i < rawN; i++ {
		userpool.VerifyPassword(hash, "Bob-Passw0rd1")
	}
	raw := float64(rawN) / time.Since(t0).Seconds()

	c := newBench(b, p)
	in := map[string]any{"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "demo-web",
		"AuthParameters": map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Passw0rd1"}}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		c.call("InitiateAuth", in)
	}
	logins := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(logins, "logins/s")
	b.ReportMetric(raw, "argon2id/s")
	b.ReportMetric(logins/raw, "login/argon2id")
}

// BenchmarkRefreshTokenAuth measures REFRESH_TOKEN_AUTH with rotation (each
// refresh stores a successor) through the HTTP handler.
func BenchmarkRefreshTokenAuth(b *testing.B) {
	c := newBench(b, apptest.CheapArgon2)
	out := c.call("InitiateAuth", map[string]any{"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "demo-web",
		"AuthParameters": map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Passw0rd1"}})
	rt := out["AuthenticationResult"].(map[string]any)["RefreshToken"].(string)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		out := c.call("InitiateAuth", map[string]any{"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": "demo-web",
			"AuthParameters": map[string]string{"REFRESH_TOKEN": rt}})
		rt = out["AuthenticationResult"].(map[string]any)["RefreshToken"].(string)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "refreshes/s")
}

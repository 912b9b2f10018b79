package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
)

// buildFn compiles testdata/fn (an aws-lambda-go program) for the test.
func buildFn(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fn")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/fn").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestLambdaFunctions(t *testing.T) {
	bin := buildFn(t)
	t.Setenv("WRIT_TEST_SERVER_SECRET", "the server's own") // as the master key or an env: secret
	env := apptest.Start(t, func(c *config.Config) {
		c.Gateway.Functions = []config.Function{{Name: "fn", Command: []string{bin}, Timeout: 2 * time.Second, Concurrency: 2,
			Env: map[string]string{"TABLE": "orders"}}}
		c.Gateway.Routes = append(c.Gateway.Routes, config.Route{Route: "ANY /fn/{proxy+}", Authorizer: "demo", Function: "fn",
			Scopes: []string{"https://api.demo.local/orders.read"}, Timeout: 5 * time.Second, MaxBody: 1 << 20})
		c.Gateway.Routes[2].Function = "fn" // GET /whoami
	})
	f := &fx{Env: env, t: t, gw: env.App.URL(app.Gateway)}
	f.pool, _ = env.App.Pools.Pool(poolID)
	tok := f.issue("demo-web", "alice", "openid", "https://api.demo.local/orders.read")
	call := func(method, path string, body []byte) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, f.gw+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Cookie", "a=1; b=2")
		req.Header.Set("X-Request-Id", "req-fn-1")
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	resp, body := call("POST", "/fn/a/b?x=1&y=2", []byte("hello"))
	if resp.StatusCode != 200 || resp.Header.Get("X-Fn") != "yes" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// The response names the request by the gateway's id (its audit
	// events'), not one the function chose.
	if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 || ids[0] != "req-fn-1" {
		t.Errorf("X-Request-Id of the response: %q", ids)
	}
	var out struct {
		Event events.APIGatewayV2HTTPRequest
		Pid   int
		Trace string
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	ev := out.Event
	jwt := ev.RequestContext.Authorizer.JWT
	if ev.Version != "2.0" || ev.RouteKey != "ANY /fn/{proxy+}" || ev.RawPath != "/fn/a/b" || ev.RawQueryString != "x=1&y=2" ||
		ev.RequestContext.HTTP.Method != "POST" || ev.RequestContext.RequestID != "req-fn-1" || ev.Body != "hello" || ev.IsBase64Encoded ||
		ev.PathParameters["proxy"] != "a/b" || ev.QueryStringParameters["y"] != "2" || len(ev.Cookies) != 2 ||
		!strings.HasPrefix(ev.Headers["authorization"], "Bearer ") {
		t.Errorf("event: %+v", ev)
	}
	// The caller's trace continues in the function (as X-Ray's header).
	if !strings.HasPrefix(out.Trace, "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=") || !strings.HasSuffix(out.Trace, ";Sampled=1") {
		t.Errorf("function trace %q", out.Trace)
	}
	if jwt.Claims["username"] != "alice" || jwt.Claims["cognito:groups"] != "[staff]" || jwt.Claims["exp"] == "" || strings.Contains(jwt.Claims["exp"], "e+") ||
		len(jwt.Scopes) != 2 {
		t.Errorf("claims as API Gateway formats them: %v scopes %v", jwt.Claims, jwt.Scopes)
	}
	// Binary bodies go base64 both ways; bare values become JSON bodies.
	resp, body = call("POST", "/fn/binary", []byte{0, 0xff, 0xfe})
	if resp.StatusCode != 201 || !bytes.Equal(body, []byte{0, 1, 2, 255}) {
		t.Errorf("binary: %d %v", resp.StatusCode, body)
	}
	resp, body = call("GET", "/fn/bare", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"bare":true`) {
		t.Errorf("bare value: %d %s", resp.StatusCode, body)
	}
	// A function sees the runtime's variables and its own, not the
	// server's environment.
	_, body = call("GET", "/fn/env", nil)
	var fnEnv struct{ Env []string }
	if err := json.Unmarshal(body, &fnEnv); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, want := range []string{"TABLE=orders", "AWS_LAMBDA_FUNCTION_NAME=fn", "AWS_REGION=us-east-1"} {
		if !slices.Contains(fnEnv.Env, want) {
			t.Errorf("function environment lacks %s: %v", want, fnEnv.Env)
		}
	}
	for _, kv := range fnEnv.Env {
		if strings.HasPrefix(kv, "WRIT_TEST_SERVER_SECRET=") {
			t.Errorf("the server's environment reached the function: %s", kv)
		}
	}
	// A status that is none is API Gateway's 502, not a broken connection.
	if resp, body := call("GET", "/fn/badstatus", nil); resp.StatusCode != 502 || !strings.Contains(string(body), `"message"`) {
		t.Errorf("status 42: %d %s", resp.StatusCode, body)
	}
	// A function error is a 502; a timeout a 504; a crash is restarted.
	if resp, _ := call("GET", "/fn/fail", nil); resp.StatusCode != 502 {
		t.Errorf("function error: %d", resp.StatusCode)
	}
	start := time.Now()
	if resp, _ := call("GET", "/fn/sleep", nil); resp.StatusCode != 504 || time.Since(start) > 5*time.Second {
		t.Errorf("timeout: %d after %v", resp.StatusCode, time.Since(start))
	}
	if resp, _ := call("GET", "/fn/crash", nil); resp.StatusCode != 502 {
		t.Errorf("crash: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := call("GET", "/fn/ok", nil)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("function never recovered: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A caller that gives up does not cost the warm process: it finishes
	// the invocation and serves the next one.
	_, body = call("GET", "/fn/ok", nil)
	json.Unmarshal(body, &out)
	pids := map[int]bool{out.Pid: true}
	for i := 0; i < 10; i++ {
		_, body = call("GET", "/fn/ok", nil)
		json.Unmarshal(body, &out)
		pids[out.Pid] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", f.gw+"/fn/nap", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("the impatient request completed")
	}
	cancel()
	time.Sleep(700 * time.Millisecond)
	for i := 0; i < 4; i++ {
		_, body = call("GET", "/fn/ok", nil)
		json.Unmarshal(body, &out)
		if !pids[out.Pid] {
			t.Errorf("a new process (pid %d) after a caller gave up; warm ones were %v", out.Pid, pids)
		}
	}

	// Without a token the function is never invoked.
	req, _ = http.NewRequest("GET", f.gw+"/fn/x", nil)
	r, _ := http.DefaultClient.Do(req)
	r.Body.Close()
	if r.StatusCode != 401 {
		t.Errorf("no token: %d", r.StatusCode)
	}
}

// TestWhoamiExample runs examples/whoami, the demo's unmodified
// aws-lambda-go function, behind GET /whoami.
func TestWhoamiExample(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "whoami")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/whoami").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := apptest.Start(t, func(c *config.Config) { c.Gateway.Functions[0].Command = []string{bin} })
	f := &fx{Env: env, t: t, gw: env.App.URL(app.Gateway)}
	f.pool, _ = env.App.Pools.Pool(poolID)
	tok := f.issue("demo-web", "alice")
	req, _ := http.NewRequest("GET", f.gw+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Route     string            `json:"route"`
		RequestID string            `json:"request_id"`
		Claims    map[string]string `json:"claims"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out.Route != "GET /whoami" || out.Claims["username"] != "alice" || out.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("%d %+v", resp.StatusCode, out)
	}
}

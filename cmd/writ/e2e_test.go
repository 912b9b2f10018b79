package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/smithy-go"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// writBinary builds cmd/writ once per test run.
func writBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "writ-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "writ")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// testConfig writes the reference configuration into dir with every
// listener on a free loopback port: the idp on one chosen here, which the
// gateway's authorizer names as its issuer.
func testConfig(t *testing.T, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idp := ln.Addr().String()
	ln.Close()
	s := string(examples.ReferenceConfig)
	s = regexp.MustCompile(`listen: 127\.0\.0\.1:\d+`).ReplaceAllString(s, "listen: 127.0.0.1:0")
	s = strings.Replace(s, "listen: 127.0.0.1:0, public_url: http://127.0.0.1:8400", "listen: "+idp+", public_url: http://"+idp, 1)
	s = strings.ReplaceAll(s, "127.0.0.1:8400", idp) // the issuer, wherever it is named
	path := filepath.Join(dir, "writ.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type server struct {
	t      testing.TB
	cmd    *exec.Cmd
	urls   map[string]string
	stderr *bytes.Buffer
	mu     *sync.Mutex
	done   chan error
}

var listenRE = regexp.MustCompile(`msg=listening component=(\w+) addr=(\S+) url=\S+|"msg":"listening","component":"(\w+)","addr":"([^"]+)"`)

// startServe runs `writ serve -c cfg` from another working directory and
// waits until ops listens (s.url waits for the others).
func startServe(t *testing.T, cfg string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(writBinary(t), append([]string{"serve", "-c", cfg}, args...)...)
	cmd.Dir = t.TempDir() // any working directory works
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, urls: map[string]string{}, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		closed := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stderr.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil {
				comp, addr := m[1]+m[3], m[2]+m[4] // text or JSON log line
				s.urls[comp] = "http://" + addr    // where it listens (the public URL may be a load balancer's)
			}
			ready := s.urls["ops"] != "" // s.url waits for the others
			s.mu.Unlock()
			if ready && !closed {
				close(found)
				closed = true
			}
		}
	}()
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case <-found:
	case err := <-s.done:
		t.Fatalf("writ serve exited: %v\n%s", err, s.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("writ serve did not start\n%s", s.log())
	}
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// url returns where component c listens, waiting for its log line when
// it has not come yet (the test fails when it does not come).
func (s *server) url(c string) string {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		u := s.urls[c]
		s.mu.Unlock()
		if u != "" {
			return u
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("writ serve did not log where %s listens\n%s", c, s.log())
		}
	}
}

// A gateway that cannot get its issuer's keys is not ready: a load
// balancer sends nothing to an instance that would refuse every token.
func TestGatewayNotReadyWithoutKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cfg := testConfig(t, t.TempDir())
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // the idp runs elsewhere, and is down
	b = regexp.MustCompile(`issuer: http://[0-9.:]+/`).ReplaceAll(b, []byte("issuer: "+dead.URL+"/"))
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, cfg, "--only", "gateway,ops")
	for range 3 {
		resp, err := http.Get(s.url("ops") + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(body), "gateway: authorizer demo: no keys") {
			t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestServeReadyAndGracefulStop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cfg := testConfig(t, t.TempDir())
	s := startServe(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.url("ops") + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never 200\n%s", s.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, err := http.Get(s.url("ops") + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v", err)
	}
	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, s.log())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop within 10s of SIGTERM")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %v", d)
	}
	if !strings.Contains(s.log(), "stopped") {
		t.Errorf("no stop message in log:\n%s", s.log())
	}
}

// TestKill9KeepsAcknowledgedSignUps kills writ with SIGKILL in the middle
// of a stream of sign-ups and finds every acknowledged user after restart.
func TestKill9KeepsAcknowledgedSignUps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cfg := testConfig(t, t.TempDir())
	s := startServe(t, cfg)
	client := func(url string) *cip.Client {
		return cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	}
	c := client(s.url("idp"))
	var mu sync.Mutex
	var acked []string
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("user-%d-%d", w, i)
				_, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String(name),
					Password: aws.String("Passw0rd-Long-1"), UserAttributes: nil})
				if err == nil {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once a few sign-ups are acknowledged (however slow the machine),
	// while more are in flight.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 10 {
			break
		}
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	cancel()
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d sign-ups acknowledged before the kill\n%s", len(acked), s.log())
	}
	s2 := startServe(t, cfg)
	c2 := client(s2.url("idp"))
	for _, name := range acked {
		_, err := c2.SignUp(context.Background(), &cip.SignUpInput{ClientId: aws.String("demo-web"), Username: aws.String(name),
			Password: aws.String("Passw0rd-Long-1")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "UsernameExistsException" {
			t.Fatalf("acknowledged user %s lost after SIGKILL: %v", name, err)
		}
	}
	t.Logf("%d acknowledged sign-ups all survived SIGKILL", len(acked))
}

func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := writBinary(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := run("config", "check", cfg); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("config check: %d %s", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("region: us-east-1\nbogus: 1\nuser_pools:\n  - id: nope\n    mfa: sometimes\n"), 0o600)
	out, code := run("config", "check", bad)
	if code == 0 || !strings.Contains(out, "bogus") || !strings.Contains(out, "mfa") {
		t.Fatalf("bad config: %d %s", code, out)
	}
	if out, code := run("version"); code != 0 || !strings.HasPrefix(out, "writ ") {
		t.Fatalf("version: %d %s", code, out)
	}
	for _, c := range [][]string{{"serve", "--help"}, {"keys", "rotate", "--help"}, {"demo", "--help"}} {
		if out, code := run(c...); code != 0 || !strings.Contains(out, "Usage: writ") {
			t.Errorf("%v: %d %s", c, code, out)
		}
	}
	if _, code := run("frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
	// Commands that inspect a deployment refuse a data_dir without a
	// store, and do not create one there.
	ref, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte(strings.Replace(string(ref), "data_dir: ./", "data_dir: ./typo-", 1)), 0o600)
	for _, c := range [][]string{{"keys", "list", "-c", typo}, {"outbox", "-c", typo}, {"audit", "query", "-c", typo}, {"audit", "verify", "-c", typo}} {
		if out, code := run(c...); code != 1 || !strings.Contains(out, "no store at") {
			t.Errorf("%v on a data_dir without a store: %d %s", c, code, out)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "typo-*")); len(matches) != 0 {
		t.Errorf("commands created %v", matches)
	}
	// keys rotate on a stopped server's data (its store made here as
	// writ serve makes it), then list shows two keys.
	loaded, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	core, err := app.OpenCore(context.Background(), loaded, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	core.Close(context.Background())
	if out, code := run("keys", "rotate", "-c", cfg); code != 0 || !strings.Contains(out, "signs from") {
		t.Fatalf("keys rotate: %d %s", code, out)
	}
	if out, code := run("keys", "list", "-c", cfg); code != 0 || strings.Count(out, "ES256") != 2 {
		t.Fatalf("keys list: %d %s", code, out)
	}
	if out, code := run("outbox", "-c", cfg); code != 0 || !strings.Contains(out, "outbox is empty") {
		t.Fatalf("outbox: %d %s", code, out)
	}
	// The outbox as `writ outbox` shows it: mail kept without SMTP (with
	// its code), and mail for the SMTP sender waiting, retried, sent or
	// given up (their bodies erased once delivery ended).
	core, err = app.OpenCore(context.Background(), loaded, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, m := range []store.Mail{{To: "kept@example.com", Subject: "Your code", Body: "Your code is 111111", CreatedAt: at},
		{To: "waiting@example.com", Subject: "Your code", Body: "Your code is 222222", CreatedAt: at, Deliver: true, NextAt: at.Add(24 * time.Hour)},
		{To: "retried@example.com", Subject: "Your code", Body: "Your code is 333333", CreatedAt: at, Deliver: true},
		{To: "sent@example.com", Subject: "Your code", Body: "Your code is 444444", CreatedAt: at, Deliver: true},
		{To: "failed@example.com", Subject: "Your code", Body: "Your code is 555555", CreatedAt: at, Deliver: true}} {
		if _, err := core.Store.EnqueueMail(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, end := range []func(m store.Mail, now time.Time) error{
		func(m store.Mail, now time.Time) error {
			return core.Store.RetryMail(context.Background(), m, now.Add(time.Minute), "451 4.3.0 try later")
		},
		func(m store.Mail, now time.Time) error { return core.Store.EndMail(context.Background(), m, now, "") },
		func(m store.Mail, now time.Time) error {
			return core.Store.EndMail(context.Background(), m, now, "550 5.1.1 no such user")
		},
	} {
		m, ok, err := core.Store.ClaimMail(context.Background(), at.Add(time.Hour), time.Minute)
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := end(m, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	core.Close(context.Background())
	out, code = run("outbox", "-c", cfg)
	for _, want := range []string{
		`to kept@example.com  "Your code"` + "\n  Your code is 111111\n",
		`to waiting@example.com  "Your code"  waiting` + "\n  Your code is 222222\n",
		`to retried@example.com  "Your code"  waiting: 1 attempts, next 2026-11-30T10:01:00Z, last error: 451 4.3.0 try later` + "\n  Your code is 333333\n",
		`to sent@example.com  "Your code"  sent 2026-11-30T10:00:00Z` + "\n",
		`to failed@example.com  "Your code"  FAILED after 1 attempts: 550 5.1.1 no such user` + "\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("outbox: %d %s\nwant %q", code, out, want)
		}
	}
	if strings.Contains(out, "444444") || strings.Contains(out, "555555") {
		t.Fatalf("outbox shows the code of ended mail: %s", out)
	}
	benchArgs := []string{"bench", "--duration", "300ms", "--concurrency", "2"}
	if dsn := os.Getenv("WRIT_TEST_POSTGRES"); dsn != "" {
		benchArgs = append(benchArgs, "--postgres", dsn)
	}
	out, code = run(benchArgs...)
	if code != 0 || !regexp.MustCompile(`sqlite\s+refreshes/s \S+ \S+\s+[1-9]\d*`).MatchString(out) ||
		!regexp.MustCompile(`sqlite\s+client_credentials grants/s \(ES256\)\s+[1-9]\d*`).MatchString(out) {
		t.Fatalf("bench: %d %s", code, out)
	}
	if os.Getenv("WRIT_TEST_POSTGRES") != "" && !regexp.MustCompile(`postgres\s+logins/s .*\s+[1-9]\d*`).MatchString(out) {
		t.Fatalf("bench on postgres: %s", out)
	}
	out, code = run("bench", "gateway", "--duration", "300ms", "--concurrency", "4")
	if code != 0 || !regexp.MustCompile(`writ gateway as served \(audit, metrics\)\s+[1-9]\d*\s+\d\.\d\d×`).MatchString(out) ||
		!regexp.MustCompile(`the audit trail alone: \d\.\d\d×`).MatchString(out) {
		t.Fatalf("bench gateway: %d %s", code, out)
	}
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"demo"}, &out, &errb); code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	s := out.String()
	for _, want := range []string{"challenge SOFTWARE_TOKEN_MFA", "cognito:username", `"alice"`, "token_use", "refresh token rotated: true",
		"NotAuthorizedException", "orders-service → sub orders-service",
		`hop 2: sub`, "/oauth2/authorize?", "code_challenge_method=S256",
		"GET /orders/42 → 200", "files   saw sub", "actors [orders-service]", "GET /files/reports/q3.txt → 200", "actors [api-gateway]",
		"GET /orders/42 → 403", "GET /orders/42 → 401", "GET /whoami → 200", "Step 5", "GetCredentialsForIdentity → ASIA", "role demo-staff — why (from the audit trail): role demo-staff (cognito:preferred_role); trust: trust policy: allowed by statement 0", "principal tags map[department:engineering]", "whoami (an aws-lambda-go function) saw username=alice cognito:groups=[staff]", `act {"act":{"client_id":"api-gateway","sub":"api-gateway"},"client_id":"orders-service","sub":"orders-service"}`, "Step 6", "alice PutObject + GetObject", `→ "alice's notes"`, "(bob's) → AccessDenied", "why: identity policy: implicitly denied: no statement allows s3:GetObject"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s+errb.String(), "Alice-Passw0rd") {
		t.Error("demo printed alice's password")
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/config"
)

func TestReferenceLoadsAsWritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "writ.yaml")
	os.WriteFile(path, examples.ReferenceConfig, 0o600)
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "us-east-1" || c.Account != "000000000000" || c.DataDir != filepath.Join(dir, "writ-data") {
		t.Errorf("top level: %q %q %q", c.Region, c.Account, c.DataDir)
	}
	if c.Serve.IDP.Listen != "127.0.0.1:8400" || c.Serve.IDP.PublicURL != "http://127.0.0.1:8400" || c.Serve.Ops.Listen != "127.0.0.1:8490" {
		t.Errorf("serve: %+v %+v", c.Serve.IDP, c.Serve.Ops)
	}
	p := c.UserPools[0]
	if p.ID != "us-east-1_WritDemo1" || p.SigningAlg != "ES256" || p.MFA != "optional" || p.PasswordPolicy.MinLength != 10 ||
		!p.PasswordPolicy.RequireUppercase || p.PasswordPolicy.RequireSymbols || p.Lockout.MaxFailures != 5 || p.Lockout.Window != 15*time.Minute {
		t.Errorf("pool: %+v", p)
	}
	if p.Tokens.ID != time.Hour || p.Tokens.Refresh != 720*time.Hour || !p.Tokens.RotateRefresh || p.Tokens.RefreshGrace != 30*time.Second {
		t.Errorf("tokens: %+v", p.Tokens)
	}
	if len(p.Clients) != 4 || !p.Clients[0].Public || p.Clients[1].Secret.Reveal() != "orders-demo-secret" ||
		strings.Join(p.Clients[1].ExchangeAudiences, ",") != "files-service" || p.Clients[0].Scopes[4] != "https://api.demo.local/orders.write" {
		t.Errorf("clients: %+v", p.Clients)
	}
	alice := p.Users[0]
	if alice.TOTPSecret.Reveal() != "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" || alice.Attributes["custom:department"] != "engineering" || alice.Groups[0] != "staff" {
		t.Errorf("alice: %+v", alice)
	}
	ip := c.IdentityPools[0]
	if ip.ID != "us-east-1:2a7c5e0e-6f43-4a8e-9a51-3f1f0c5d7b21" || ip.Providers[0].RoleResolution != "token" || ip.PrincipalTags["department"] != "custom:department" {
		t.Errorf("identity pool: %+v", ip)
	}
	for _, r := range c.IAM.Roles {
		var doc struct{ Statement []map[string]any }
		if err := json.Unmarshal(r.Policy.Bytes(), &doc); err != nil || len(doc.Statement) == 0 {
			t.Errorf("role %s policy: %v", r.Name, err)
		}
		if err := json.Unmarshal(r.Trust.Bytes(), &doc); err != nil {
			t.Errorf("role %s trust: %v", r.Name, err)
		}
	}
	if c.IAM.Users[0].AccessKeyID != "AKIAWRITDEMOADMIN001" || c.Objects.Buckets[0] != "writ-demo" {
		t.Errorf("iam users / buckets")
	}
	g := c.Gateway
	if len(g.Routes) != 3 || g.Routes[1].Propagate != "exchange" || g.Routes[0].Propagate != "forward" || g.Authorizers[0].TokenUse[0] != "access" {
		t.Errorf("gateway: %+v", g)
	}
	if fn := g.Functions[0]; fn.Command[0] != filepath.Join(dir, "bin/whoami") || fn.Timeout != 10*time.Second || fn.Concurrency != 2 {
		t.Errorf("function: %+v", fn)
	}
	if arn := config.RoleARN(c.Account, "demo-user"); arn != "arn:aws:iam::000000000000:role/demo-user" {
		t.Error(arn)
	}
}

func TestSameResultFromAnotherDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "writ.yaml")
	os.WriteFile(path, examples.ReferenceConfig, 0o600)
	a, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	t.Chdir(t.TempDir())
	rel, _ := filepath.Rel(mustGetwd(t), path)
	b, err := config.Load(rel)
	if err != nil {
		t.Fatal(err)
	}
	_ = wd
	if a.DataDir != b.DataDir || a.Gateway.Functions[0].Command[0] != b.Gateway.Functions[0].Command[0] {
		t.Errorf("paths differ: %q vs %q", a.DataDir, b.DataDir)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestEnvValues(t *testing.T) {
	t.Setenv("WRIT_T_SECRET", "s3cr3t-value")
	t.Setenv("WRIT_T_N", "7")
	t.Setenv("WRIT_T_D", "45m")
	src := strings.NewReplacer(
		"secret: orders-demo-secret", "secret: env:WRIT_T_SECRET",
		"lockout: { max_failures: 5, window: 15m }", "lockout: { max_failures: env:WRIT_T_N, window: env:WRIT_T_D }",
	).Replace(string(examples.ReferenceConfig))
	c, err := config.Parse([]byte(src), filepath.Join(t.TempDir(), "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.UserPools[0]
	if p.Clients[1].Secret.Reveal() != "s3cr3t-value" || p.Lockout.MaxFailures != 7 || p.Lockout.Window != 45*time.Minute {
		t.Fatalf("env values: %v %d %v", p.Clients[1].Secret.Reveal(), p.Lockout.MaxFailures, p.Lockout.Window)
	}
}

func TestManyMistakesReportedAtOnce(t *testing.T) {
	_, err := config.Load("testdata/many-mistakes.yaml")
	var ce *config.Errors
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Errors, got %v", err)
	}
	var got []string
	for _, f := range ce.Fields {
		got = append(got, f.Error())
	}
	sort.Strings(got)
	wantB, _ := os.ReadFile("testdata/many-mistakes.golden")
	want := strings.Split(strings.TrimSpace(string(wantB)), "\n")
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems differ.\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestUnknownKeysAtEveryDepth(t *testing.T) {
	for _, c := range []struct{ yaml, path string }{
		{"regoin: x\n", "regoin"},
		{"serve: { idp: { listen: '127.0.0.1:0', lisen: x } }\n", "serve.idp.lisen"},
		{"user_pools: [{ id: us-east-1_A, tokens: { acess: 1h } }]\n", "user_pools[0].tokens.acess"},
		{"gateway: { routes: [{ route: 'GET /x', upstream: 'http://h', propogate: forward }] }\n", "gateway.routes[0].propogate"},
	} {
		_, err := config.Parse([]byte(c.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), c.path+": unknown key") {
			t.Errorf("%q: %v", c.yaml, err)
		}
	}
	if _, err := config.Parse([]byte("user_pools: 3\n"), "x.yaml"); err == nil || !strings.Contains(err.Error(), "want a list") {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := config.Parse([]byte(": : :\n\t"), "x.yaml"); err == nil || !strings.Contains(err.Error(), "not valid YAML") {
		t.Errorf("bad YAML: %v", err)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.UserPools[0].Users[0].Password
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "pw", s, "cfg", c.UserPools[0].Users[0])
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "pw", s)
	js, _ := json.Marshal(c)
	outs := []string{fmt.Sprintf("%v %s %+v %#v %q", s, s, s, s, s), fmt.Sprintf("%+v %#v", c.UserPools[0].Users[0], c.UserPools[0].Users[0]),
		logged.String(), string(js)}
	for _, secret := range []string{"Alice-Passw0rd", "JBSWY3DPEHPK3PXP", "orders-demo-secret", "writ-demo-admin-secret"} {
		for _, o := range outs {
			if strings.Contains(o, secret) {
				t.Errorf("secret %q printed in %.200s", secret, o)
			}
		}
	}
	if !s.Equal("Alice-Passw0rd") || s.Equal("alice-passw0rd") {
		t.Error("Equal")
	}
}

func TestParseRoute(t *testing.T) {
	for route, shape := range map[string]string{
		"GET /orders/{id}":    "GET /orders/{}",
		"ANY /files/{proxy+}": "ANY /files/{+}",
		"POST /":              "POST /",
		"DELETE /a/b/{x}/{y}": "DELETE /a/b/{}/{}",
	} {
		m, s, err := config.ParseRoute(route)
		if err != nil || m+" "+s != shape {
			t.Errorf("%q: %q %q %v", route, m, s, err)
		}
	}
	for _, bad := range []string{"GET orders", "FETCH /x", "GET /{p+}/x", "GET /{a}/{a}", "GET /a{b}", "GET"} {
		if _, _, err := config.ParseRoute(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTracing(t *testing.T) {
	c, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Endpoint != "" || *c.Tracing.SampleRatio != 1 || c.Tracing.ServiceName != "writ" {
		t.Errorf("tracing is off by default: %+v", c.Tracing)
	}
	t.Setenv("WRIT_T_OTLP_KEY", "k3y")
	src := string(examples.ReferenceConfig) + "tracing:\n  endpoint: http://127.0.0.1:4318\n  sample_ratio: 0.25\n  headers: { x-api-key: env:WRIT_T_OTLP_KEY }\n"
	if c, err = config.Parse([]byte(src), filepath.Join(t.TempDir(), "w.yaml")); err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Endpoint != "http://127.0.0.1:4318" || *c.Tracing.SampleRatio != 0.25 || c.Tracing.Headers["x-api-key"].Reveal() != "k3y" {
		t.Errorf("tracing: %+v", c.Tracing)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"tracing: { endpoint: '127.0.0.1:4318' }\n", "tracing.endpoint: not an http(s) URL"},
		{"tracing: { endpoint: 'http://c:4318', sample_ratio: 2 }\n", "tracing.sample_ratio: must be 0 to 1"},
		{"tracing: { endpiont: 'http://c:4318' }\n", `tracing.endpiont: unknown key "endpiont" (did you mean "endpoint"?)`},
	} {
		if _, err := config.Parse([]byte(bad.yaml), "x.yaml"); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v", bad.yaml, err)
		}
	}
}

// The mail settings are checked when the file loads: a mistake would
// otherwise show only when a queued message fails, long after the request
// that queued it answered.
func TestMail(t *testing.T) {
	c, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mail.SMTP != "" || c.Mail.From != "no-reply@writ.local" || c.Mail.TLS != "starttls" {
		t.Errorf("mail defaults: %+v", c.Mail)
	}
	src := string(examples.ReferenceConfig) + "mail: { smtp: 'smtp.example.com:587', from: 'Example <no-reply@example.com>', tls: required }\n"
	if c, err = config.Parse([]byte(src), filepath.Join(t.TempDir(), "w.yaml")); err != nil {
		t.Fatal(err)
	}
	if c.Mail.From != "Example <no-reply@example.com>" || c.Mail.TLS != "required" {
		t.Errorf("mail: %+v", c.Mail)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"mail: { smtp: smtp.example.com }\n", `mail.smtp: not a host:port address: "smtp.example.com"`},
		{"mail: { smtp: ':25' }\n", `mail.smtp: not a host:port address: ":25"`},
		{"mail: { from: 'no reply' }\n", `mail.from: not a mail address: "no reply"`},
		{"mail: { from: 'a@b.c, d@e.f' }\n", `mail.from: not a mail address`},
		{"mail: { tls: always }\n", `mail.tls: "always" is not one of starttls, required, implicit`},
	} {
		if _, err := config.Parse([]byte(bad.yaml), "x.yaml"); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v", bad.yaml, err)
		}
	}
}

// A seed user no one could sign in as (a name over 128 characters, which
// the API refuses) is refused when the file loads.
func TestSeedUsernameLength(t *testing.T) {
	long := strings.Repeat("x", 129)
	y := strings.Replace(string(examples.ReferenceConfig), "      - username: bob\n", "      - username: "+long+"\n        password: Long-Passw0rd1\n      - username: bob\n", 1)
	if _, err := config.Parse([]byte(y), filepath.Join(t.TempDir(), "w.yaml")); err == nil || !strings.Contains(err.Error(), "more than 128 characters") {
		t.Fatalf("%v", err)
	}
}

// A group's precedence is Cognito's: unset when left out, refused when
// negative or beyond 2^31-1.
func TestGroupPrecedence(t *testing.T) {
	parse := func(group string) (*config.Config, error) {
		y := strings.Replace(string(examples.ReferenceConfig), "      - { name: customers, precedence: 10, role: demo-user }\n",
			"      - { name: customers, precedence: 10, role: demo-user }\n"+group, 1)
		return config.Parse([]byte(y), filepath.Join(t.TempDir(), "w.yaml"))
	}
	c, err := parse("      - { name: guests }\n")
	if err != nil {
		t.Fatal(err)
	}
	gs := c.UserPools[0].Groups
	if g := gs[len(gs)-1]; g.Name != "guests" || g.Precedence != nil || gs[0].Precedence == nil || *gs[0].Precedence != 1 {
		t.Fatalf("groups: %+v", gs)
	}
	for _, bad := range []string{"-1", "2147483648"} {
		if _, err := parse("      - { name: guests, precedence: " + bad + " }\n"); err == nil || !strings.Contains(err.Error(), "groups[2].precedence: must be between 0 and 2147483647") {
			t.Errorf("precedence %s: %v", bad, err)
		}
	}
}

// A seed user's email and attributes take what the API takes: a seed the
// API would refuse is refused when the file loads.
func TestSeedAttributes(t *testing.T) {
	seed := func(lines string) error {
		y := strings.Replace(string(examples.ReferenceConfig), "      - username: bob\n",
			"      - username: carol\n        password: Carol-Passw0rd1\n"+lines+"      - username: bob\n", 1)
		_, err := config.Parse([]byte(y), filepath.Join(t.TempDir(), "w.yaml"))
		return err
	}
	if err := seed("        email: carol@example.com\n        attributes: { phone_number: \"+15555550100\", birthdate: 0000-02-29, \"custom:team\": a, updated_at: \"0\" }\n"); err != nil {
		t.Fatalf("a seed the API takes: %v", err)
	}
	for _, c := range []struct{ lines, want string }{
		{"        email: \"Carol <carol@example.com>\"\n", "users[1].email: not an email address"},
		{"        attributes: { phone_number: 555-0100 }\n", "users[1].attributes.phone_number: Invalid phone number format."},
		{"        attributes: { birthdate: 1990-13-01 }\n", "users[1].attributes.birthdate: Invalid birthdate format"},
		{"        attributes: { updated_at: yesterday }\n", "users[1].attributes.updated_at: Invalid updated_at"},
		{"        attributes: { phone_number_verified: maybe }\n", "users[1].attributes.phone_number_verified: Invalid value"},
		{"        attributes: { department: x }\n", "users[1].attributes.department: no such attribute"},
		{"        attributes: { \"custom:" + strings.Repeat("x", 33) + "\": x }\n", "name longer than 39 characters"},
		{"        attributes: { nickname: " + strings.Repeat("x", 2049) + " }\n", "users[1].attributes.nickname: longer than 2048 characters"},
	} {
		if err := seed(c.lines); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.80q: %.300v, want %q", c.lines, err, c.want)
		}
	}
}

// An exchange audience naming a client that signs users in loads, with a
// warning: a token exchanged for it would carry it as aud, as that
// client's ID tokens do.
func TestExchangeAudienceOfASignInClientWarns(t *testing.T) {
	c, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "w.yaml"))
	if err != nil || len(c.Warnings) != 0 {
		t.Fatalf("the reference: %v %v", err, c.Warnings)
	}
	y := strings.Replace(string(examples.ReferenceConfig), "exchange_audiences: [files-service]   #", "exchange_audiences: [files-service, demo-web]   #", 1)
	c, err = config.Parse([]byte(y), filepath.Join(t.TempDir(), "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Path, "exchange_audiences[1]") || !strings.Contains(c.Warnings[0].Msg, "signs users in") {
		t.Fatalf("warnings: %v", c.Warnings)
	}
}

package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/userpool"
)

// TestWhatServeRefuses: a file that writ serve refuses or misuses is
// refused at load time (so by writ config check), every problem at once,
// each with its YAML path and line: IAM policy documents parsed as serve
// parses them (trust policies as trust policies), negative sizes and
// limits, ports out of range, two components on one address, and seed
// passwords that their pool's policy forbids.
func TestWhatServeRefuses(t *testing.T) {
	src := `serve:
  idp: { listen: "127.0.0.1:8400" }
  identity: { listen: "127.0.0.1:8400" }
  objects: { listen: "127.0.0.1:70000" }
  gateway: { listen: "127.0.0.1:0" }
  ops: { listen: "127.0.0.1:0" }
store_pool: { max_open: -1 }
user_pools:
  - id: us-east-1_A
    password_policy: { min_length: 10, require_symbols: true }
    users:
      - { username: short, password: Sh0rt! }
      - { username: plain, password: Plainenoughbutnosymbol }
      - { username: fine, password: "Fine-Passw0rd!" }
iam:
  roles:
    - name: a
      trust: '{"Statement": [{"Effect": "Permit", "Principal": "*", "Action": "sts:AssumeRole"}]}'
      policy: '{"Statement": [{"Effect": "Allow", "Actions": "s3:*", "Resource": "*"}]}'
      boundary: '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqualz": {"aws:username": "x"}}}]}'
    - name: b
      trust: '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*"}]}'
  users:
    - name: u
      access_key_id: AKIAWRITTESTUSER0001
      secret_access_key: s
      policy:
        Statement: [{Effect: Allow, Action: "s3:*", Principal: "*", Resource: "*"}]
objects: { max_object_size: -5 }
gateway:
  routes:
    - { route: GET /x, upstream: "http://127.0.0.1:1", max_body: -1, rate_limit: -0.5 }
`
	_, err := config.Parse([]byte(src), filepath.Join(t.TempDir(), "writ.yaml"))
	var ce *config.Errors
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Errors, got %v", err)
	}
	got := err.Error()
	for _, want := range []string{
		`serve.objects.listen: port "70000" is not 1 to 65535 (or 0 for any free port) (line 4)`,
		`store_pool.max_open: must not be negative (0 means the default, 10) (line 7)`,
		`user_pools[0].users[0].password: breaks the pool's password_policy: Password not long enough (minimum 10 characters) (line 12)`,
		`user_pools[0].users[1].password: breaks the pool's password_policy: Password must have symbol characters (line 13)`,
		`iam.roles[0].trust: Statement[0].Effect: must be "Allow" or "Deny" (line 18)`,
		`iam.roles[0].policy: Statement[0].Actions: unknown element (line 19)`,
		`iam.roles[0].boundary: Statement[0].Condition.StringEqualz: unknown operator "StringEqualz" (line 20)`,
		`iam.roles[1].trust: Statement[0]: a trust policy has no Resource (line 22)`,
		`iam.users[0].policy: Statement[0]: an identity policy has no Principal (line 28)`,
		`objects.max_object_size: must not be negative (0 or none means the default, 5 GiB) (line 29)`,
		`gateway.routes[0].max_body: must not be negative (0 or none means the default, 10 MiB) (line 32)`,
		`gateway.routes[0].rate_limit: must not be negative (requests per second; 0 means unlimited) (line 32)`,
	} {
		if !strings.Contains(got, want+"\n") && !strings.HasSuffix(got, want) {
			t.Errorf("missing %s", want)
		}
	}
	if len(ce.Fields) != 12 {
		t.Errorf("%d problems, want 12:\n%s", len(ce.Fields), got)
	}
	for _, secret := range []string{"Sh0rt!", "Plainenoughbutnosymbol", "Fine-Passw0rd!"} {
		if strings.Contains(got, secret) {
			t.Errorf("a password is printed: %s", got)
		}
	}

	// Components may share an address (each runs where `serve --only`
	// puts it); ports 0 to 65535 are fine.
	for _, listen := range []string{
		"idp: { listen: ':8080' }\n  ops: { listen: ':8080' }",
		"idp: { listen: '127.0.0.1:0' }\n  ops: { listen: '127.0.0.1:0' }",
		"idp: { listen: '127.0.0.1:65535' }\n  ops: { listen: '127.0.0.1:1' }",
	} {
		if _, err := config.Parse([]byte("serve:\n  "+listen+"\n"), "x.yaml"); err != nil {
			t.Errorf("%s: %v", listen, err)
		}
	}
	for _, port := range []string{"-1", "65536", "http"} {
		_, err := config.Parse([]byte("serve: { ops: { listen: '127.0.0.1:"+port+"' } }\n"), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), "serve.ops.listen: port") {
			t.Errorf("port %s: %v", port, err)
		}
	}

	// The reference file, with every policy and password it holds, loads.
	if _, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "writ.yaml")); err != nil {
		t.Fatal(err)
	}
}

// TestPasswordPolicyViolation: config's check of seed passwords and the
// user pool's check of passwords agree.
func TestPasswordPolicyViolation(t *testing.T) {
	policies := []config.PasswordPolicy{
		{},
		{MinLength: 6},
		{MinLength: 10, RequireLowercase: true, RequireUppercase: true, RequireDigits: true},
		{MinLength: 8, RequireSymbols: true},
		{MinLength: 99, RequireLowercase: true},
	}
	passwords := []string{"", "abc", "abcdefgh", "ABCDEFGH1", "Abcdefgh1", "Abcdefgh1!", "Passw0rd Space",
		"ÄÖÜäöü123", "ünïcödé", strings.Repeat("a", 257), strings.Repeat("Aa1!", 30)}
	for _, pp := range policies {
		for _, pw := range passwords {
			rule := pp.Violation(pw)
			err := userpool.CheckPasswordPolicy(pp, pw)
			if (rule == "") != (err == nil) || (err != nil && !strings.HasSuffix(err.Error(), rule)) {
				t.Errorf("%+v %q: config says %q, userpool says %v", pp, pw, rule, err)
			}
		}
	}
}

// TestTypeErrorsNeverQuoteValues: a value of the wrong type may be a
// secret in the wrong place (or read from the environment); type errors
// say what kind of value it is, never the value.
func TestTypeErrorsNeverQuoteValues(t *testing.T) {
	t.Setenv("WRIT_T_TYPE_SECRET", "env-secret-value")
	for _, c := range []struct{ yaml, want, secret string }{
		{"previous_master_keys: SOMEKEY=\n", "previous_master_keys: want a list, got a string (line 1)", "SOMEKEY="},
		{"gateway: { client: gateway-demo-secret }\n", "gateway.client: want a mapping, got a string (line 1)", "gateway-demo-secret"},
		{"gateway: { client: env:WRIT_T_TYPE_SECRET }\n", "gateway.client: want a mapping, got a string (line 1)", "env-secret-value"},
		{"serve: 8400\n", "serve: want a mapping, got an integer (line 1)", "8400"},
		{"user_pools: [{ id: us-east-1_A, lockout: { max_failures: hunter2-secret } }]\n", "user_pools[0].lockout.max_failures: want an integer, got a string (line 1)", "hunter2-secret"},
		{"user_pools: [{ id: us-east-1_A, lockout: { max_failures: env:WRIT_T_TYPE_SECRET } }]\n", "want an integer, got a string (line 1)", "env-secret-value"},
		{"user_pools: [{ id: us-east-1_A, self_signup: hunter2-secret }]\n", "user_pools[0].self_signup: want true or false, got a string (line 1)", "hunter2-secret"},
		{"user_pools: [{ id: us-east-1_A, tokens: { id: hunter2-secret } }]\n", "user_pools[0].tokens.id: want a duration (e.g. 15m, 1h, 30d), got a string (line 1)", "hunter2-secret"},
		{"tracing: { sample_ratio: hunter2-secret }\n", "tracing.sample_ratio: want a finite number, got a string (line 1)", "hunter2-secret"},
		{"tracing: { sample_ratio: .nan }\n", "tracing.sample_ratio: want a finite number, got a number (line 1)", ".nan"},
		{"tracing: { sample_ratio: NaN }\n", "tracing.sample_ratio: want a finite number, got a string (line 1)", "NaN"},
		{"gateway: { routes: [{ route: GET /x, upstream: 'http://h', rate_limit: .inf }] }\n", "gateway.routes[0].rate_limit: want a finite number, got a number (line 1)", ".inf"},
		{"iam: { users: [{ name: [a-secret-in-a-list] }] }\n", "iam.users[0].name: want a single value, got a list (line 1)", "a-secret-in-a-list"},
	} {
		_, err := config.Parse([]byte(c.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n  got  %v\n  want %s", c.yaml, err, c.want)
		} else if strings.Contains(err.Error(), c.secret) {
			t.Errorf("%q: the value is printed: %v", c.yaml, err)
		}
	}
}

// TestTrustedProxies: serve.<component>.trusted_proxies is optional (none
// by default) and each entry must be an IP address or a CIDR prefix,
// IPv4 or IPv6; every bad entry is named by its index.
func TestTrustedProxies(t *testing.T) {
	c, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "writ.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*config.Listener{c.Serve.IDP, c.Serve.Identity, c.Serve.Objects, c.Serve.Gateway, c.Serve.Ops} {
		if l.TrustedProxies != nil {
			t.Errorf("%s: trusted_proxies by default: %q", l.Listen, l.TrustedProxies)
		}
	}

	src := `serve:
  idp:
    listen: 127.0.0.1:8400
    trusted_proxies: [127.0.0.1, 10.0.0.0/8, "::1", fd00::/8, "::ffff:192.168.0.0/112"]
  gateway: { listen: 127.0.0.1:8480, trusted_proxies: ["0.0.0.0/0", "::/0"] }
  ops: { listen: 127.0.0.1:8490, trusted_proxies: [] }
`
	if c, err = config.Parse([]byte(src), "x.yaml"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Serve.IDP.TrustedProxies, " "); got != "127.0.0.1 10.0.0.0/8 ::1 fd00::/8 ::ffff:192.168.0.0/112" {
		t.Errorf("idp: %s", got)
	}
	if len(c.Serve.Gateway.TrustedProxies) != 2 || len(c.Serve.Ops.TrustedProxies) != 0 {
		t.Errorf("gateway %q, ops %q", c.Serve.Gateway.TrustedProxies, c.Serve.Ops.TrustedProxies)
	}
	if len(c.Warnings) != 2 { // 0.0.0.0/0 and ::/0: see TestBroadTrustedProxiesWarn
		t.Errorf("warnings: %v", c.Warnings)
	}

	bad := `serve:
  idp:
    listen: 127.0.0.1:8400
    trusted_proxies:
      - 10.0.0.0/8
      - lb.internal
      - 10.0.0.1/8
      - 10.0.0.0/33
  identity: { listen: 127.0.0.1:8401, trusted_proxies: ["fe80::1%eth0", "10.1.2.3:80"] }
  objects: { listen: 127.0.0.1:8402, trusted_proxies: 10.0.0.0/8 }
`
	_, err = config.Parse([]byte(bad), "x.yaml")
	var ce *config.Errors
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Errors, got %v", err)
	}
	got := err.Error()
	for _, want := range []string{
		`serve.idp.trusted_proxies[1]: not an IP address or CIDR prefix: "lb.internal" (line 6)`,
		`serve.idp.trusted_proxies[2]: "10.0.0.1/8" has bits set past its prefix length (did you mean 10.0.0.0/8?) (line 7)`,
		`serve.idp.trusted_proxies[3]: not an IP address or CIDR prefix: "10.0.0.0/33" (line 8)`,
		`serve.identity.trusted_proxies[0]: "fe80::1%eth0" has an IPv6 zone: write the address without it (line 9)`,
		`serve.identity.trusted_proxies[1]: not an IP address or CIDR prefix: "10.1.2.3:80" (line 9)`,
		`serve.objects.trusted_proxies: want a list, got a string (line 10)`,
	} {
		if !strings.Contains(got, want+"\n") && !strings.HasSuffix(got, want) {
			t.Errorf("missing %s", want)
		}
	}
	if len(ce.Fields) != 6 {
		t.Errorf("%d problems, want 6:\n%s", len(ce.Fields), got)
	}
}

// TestBroadTrustedProxiesWarn: a trusted_proxies entry that lets any
// client (0.0.0.0/0, ::/0) or much of the Internet set its own address is
// loaded, as a lab may mean it, with a warning at its YAML path and line
// for writ to show; the proxies' own networks, private or not, are not
// warned of, nor is the reference configuration.
func TestBroadTrustedProxiesWarn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.yaml")
	src := `serve:
  idp:
    listen: 127.0.0.1:8400
    trusted_proxies: [0.0.0.0/0]
  identity:
    listen: 127.0.0.1:8401
    trusted_proxies:
      - 10.0.0.0/8
      - "::/0"
      - 64.0.0.0/2
      - 2000::/3
      - "::ffff:0.0.0.0/96"
  objects: { listen: 127.0.0.1:8402, trusted_proxies: [10.0.0.0/8, 100.64.0.0/10, 127.0.0.1, "fc00::/7", "fe80::/10", "2001:db8::/32", "::1"] }
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("a broad entry is not refused: %v", err)
	}
	if got := strings.Join(c.Serve.IDP.TrustedProxies, " "); got != "0.0.0.0/0" {
		t.Errorf("idp: %s", got)
	}
	const so = " as proxies, so any client there can set its own address with X-Forwarded-For or Forwarded: list only the proxies' addresses or networks"
	want := []string{
		`serve.idp.trusted_proxies[0]: "0.0.0.0/0" trusts every IPv4 address` + so + ` (line 4)`,
		`serve.identity.trusted_proxies[1]: "::/0" trusts every IPv6 address` + so + ` (line 9)`,
		`serve.identity.trusted_proxies[2]: "64.0.0.0/2" trusts more than a /8 of IPv4 addresses` + so + ` (line 10)`,
		`serve.identity.trusted_proxies[3]: "2000::/3" trusts more than a /16 of IPv6 addresses` + so + ` (line 11)`,
		`serve.identity.trusted_proxies[4]: "::ffff:0.0.0.0/96" trusts every IPv4 address` + so + ` (line 12)`,
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w := c.Warnings[0]; w.Path != "serve.idp.trusted_proxies[0]" || w.Line != 4 {
		t.Errorf("first warning at %s line %d", w.Path, w.Line)
	}

	ref, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "writ.yaml"))
	if err != nil || len(ref.Warnings) != 0 {
		t.Errorf("reference: %v %v", err, ref.Warnings)
	}
	// With a problem besides, the problem is what Load returns.
	if _, err := config.Parse([]byte(src+"  ops: { listen: nope }\n"), path); err == nil || strings.Contains(err.Error(), "0.0.0.0/0") {
		t.Errorf("with an error: %v", err)
	}
}

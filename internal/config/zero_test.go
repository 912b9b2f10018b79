package config_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/config"
)

// zeroBase is a small valid file with one of everything that has a
// defaulted number or duration; each {NAME} takes ", key: value" pairs
// for that mapping (or nothing).
const zeroBase = `keys: { rotate_every: 0s {KEYS} }
user_pools:
  - { id: us-east-1_Zero1 {POOL} }
iam:
  roles:
    - { name: r, trust: '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}' {ROLE} }
objects: { buckets: [zero-bucket] {OBJECTS} }
gateway:
  authorizers:
    - { name: a, issuer: "http://127.0.0.1:8400/us-east-1_Zero1" {AUTH} }
  routes:
    - { route: GET /x, authorizer: a, upstream: "http://127.0.0.1:1" {ROUTE} }
  functions:
    - { name: f, command: [/bin/true] {FUNC} }
`

// zeroFile fills zeroBase's slots: keys are slot names (POOL, ...).
func zeroFile(slots map[string]string) []byte {
	s := zeroBase
	for _, name := range []string{"KEYS", "POOL", "ROLE", "OBJECTS", "AUTH", "ROUTE", "FUNC"} {
		s = strings.ReplaceAll(s, "{"+name+"}", slots[name])
	}
	return []byte(s)
}

// TestLeftOutGetsTheDefault: a key the file leaves out, or writes with no
// value (null), gets its default.
func TestLeftOutGetsTheDefault(t *testing.T) {
	for name, src := range map[string][]byte{
		"left out": zeroFile(nil),
		"null": zeroFile(map[string]string{
			"KEYS":    ", activation_delay: ~",
			"POOL":    ", password_policy: { min_length: ~ }, lockout: { max_failures: ~, window: ~ }, tokens: { id: ~, access: ~, refresh: ~, refresh_grace: ~, session: ~, code: ~ }, max_actor_chain: ~",
			"ROLE":    ", max_session: ~",
			"OBJECTS": ", max_object_size: ~",
			"AUTH":    ", token_use: ~, skew: ~",
			"ROUTE":   ", timeout: ~, max_body: ~",
			"FUNC":    ", timeout: ~, concurrency: ~",
		}),
	} {
		c, err := config.Parse(src, filepath.Join(t.TempDir(), "writ.yaml"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := c.UserPools[0]
		want := config.TokenLifetimes{ID: time.Hour, Access: time.Hour, Refresh: 720 * time.Hour, RefreshGrace: 30 * time.Second,
			Session: 3 * time.Minute, Code: 5 * time.Minute}
		if p.Tokens != want {
			t.Errorf("%s: tokens %+v, want %+v", name, p.Tokens, want)
		}
		if c.Keys.ActivationDelay != 10*time.Minute || p.PasswordPolicy.MinLength != 8 || p.Lockout.MaxFailures != 5 ||
			p.Lockout.Window != 15*time.Minute || p.MaxActorChain != 5 {
			t.Errorf("%s: activation_delay %v, pool %+v", name, c.Keys.ActivationDelay, p)
		}
		if c.IAM.Roles[0].MaxSession != time.Hour || c.Objects.MaxObjectSize != 5<<30 {
			t.Errorf("%s: max_session %v, max_object_size %d", name, c.IAM.Roles[0].MaxSession, c.Objects.MaxObjectSize)
		}
		if a := c.Gateway.Authorizers[0]; a.Skew != 30*time.Second || !slices.Equal(a.TokenUse, []string{"access"}) {
			t.Errorf("%s: authorizer %+v", name, a)
		}
		if r := c.Gateway.Routes[0]; r.Timeout != 30*time.Second || r.MaxBody != 10<<20 {
			t.Errorf("%s: route %+v", name, r)
		}
		if f := c.Gateway.Functions[0]; f.Timeout != 3*time.Second || f.Concurrency != 1 {
			t.Errorf("%s: function %+v", name, f)
		}
	}
}

// TestZeroMeansZero: where 0 is a setting (no refresh-token grace, no
// clock skew), a 0 written in the file is 0, not the default.
func TestZeroMeansZero(t *testing.T) {
	t.Setenv("WRIT_T_ZERO", "0s")
	for _, zero := range []string{"0", "0s", "0m", "env:WRIT_T_ZERO"} {
		src := zeroFile(map[string]string{
			"POOL": ", tokens: { rotate_refresh: true, refresh_grace: " + zero + " }",
			"AUTH": ", skew: " + zero,
		})
		c, err := config.Parse(src, filepath.Join(t.TempDir(), "writ.yaml"))
		if err != nil {
			t.Fatalf("%s: %v", zero, err)
		}
		if g := c.UserPools[0].Tokens.RefreshGrace; g != 0 {
			t.Errorf("refresh_grace: %s gave %v", zero, g)
		}
		if s := c.Gateway.Authorizers[0].Skew; s != 0 {
			t.Errorf("skew: %s gave %v", zero, s)
		}
		// Only what was written is zero: the rest keep their defaults.
		if tk := c.UserPools[0].Tokens; tk.Access != time.Hour || tk.Code != 5*time.Minute {
			t.Errorf("%s: other lifetimes %+v", zero, tk)
		}
	}
	// The grace still has its upper bound.
	_, err := config.Parse(zeroFile(map[string]string{"POOL": ", tokens: { refresh_grace: 6m }"}), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), "user_pools[0].tokens.refresh_grace: 6m0s is out of range (0s to 5m0s)") {
		t.Errorf("refresh_grace 6m: %v", err)
	}
}

// TestZeroRefusedWhereMeaningless: where 0 means nothing useful (a token
// lifetime, a lockout of 0 failures), a 0 written in the file is refused,
// with the field named, rather than silently taken for the default.
func TestZeroRefusedWhereMeaningless(t *testing.T) {
	for _, c := range []struct{ slot, value, want string }{
		{"KEYS", "activation_delay: 0s", "keys.activation_delay: must be more than 0 (leave it out for the default, 10m) (line 1)"},
		{"POOL", "password_policy: { min_length: 0 }", "user_pools[0].password_policy.min_length: must be 6 to 99 (line 3)"},
		{"POOL", "lockout: { max_failures: 0 }", "user_pools[0].lockout.max_failures: must be at least 1 (leave it out for the default, 5) (line 3)"},
		{"POOL", "lockout: { window: 0s }", "user_pools[0].lockout.window: must be more than 0 (leave it out for the default, 15m) (line 3)"},
		{"POOL", "tokens: { id: 0 }", "user_pools[0].tokens.id: 0s is out of range (5m0s to 24h0m0s) (line 3)"},
		{"POOL", "tokens: { access: 0s }", "user_pools[0].tokens.access: 0s is out of range (5m0s to 24h0m0s) (line 3)"},
		{"POOL", "tokens: { refresh: 0d }", "user_pools[0].tokens.refresh: 0s is out of range (1h0m0s to 87600h0m0s) (line 3)"},
		{"POOL", "tokens: { session: 0s }", "user_pools[0].tokens.session: 0s is out of range (1m0s to 15m0s) (line 3)"},
		{"POOL", "tokens: { code: 0s }", "user_pools[0].tokens.code: must be more than 0 (leave it out for the default, 5m) (line 3)"},
		{"POOL", "max_actor_chain: 0", "user_pools[0].max_actor_chain: must be 1 to 20 (line 3)"},
		{"ROLE", "max_session: 0s", "iam.roles[0].max_session: 0s is out of range (15m0s to 12h0m0s) (line 6)"},
		{"OBJECTS", "max_object_size: -1", "objects.max_object_size: must not be negative (0 or none means the default, 5 GiB) (line 7)"},
		{"AUTH", "token_use: []", "gateway.authorizers[0].token_use: must list access, id or both (leave it out for the default, [access]) (line 10)"},
		{"ROUTE", "timeout: 0s", "gateway.routes[0].timeout: must be more than 0 (leave it out for the default, 30s) (line 12)"},
		{"ROUTE", "max_body: -1", "gateway.routes[0].max_body: must not be negative (0 or none means the default, 10 MiB) (line 12)"},
		{"FUNC", "timeout: 0s", "gateway.functions[0].timeout: must be more than 0 (leave it out for the default, 3s) (line 14)"},
		{"FUNC", "concurrency: 0", "gateway.functions[0].concurrency: must be 1 to 64 (line 14)"},
	} {
		_, err := config.Parse(zeroFile(map[string]string{c.slot: ", " + c.value}), "x.yaml")
		var ce *config.Errors
		if !errors.As(err, &ce) {
			t.Errorf("%s: want *config.Errors, got %v", c.value, err)
			continue
		}
		if len(ce.Fields) != 1 || ce.Fields[0].Error() != c.want {
			t.Errorf("%s:\n  got  %v\n  want %s", c.value, err, c.want)
		}
	}
}

// TestReferenceDefaultsUnchanged: examples/writ.yaml loads with the values
// it always had, defaults included.
func TestReferenceDefaultsUnchanged(t *testing.T) {
	c, err := config.Parse(examples.ReferenceConfig, filepath.Join(t.TempDir(), "writ.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Keys.ActivationDelay != 10*time.Minute || c.Keys.RotateEvery != 0 || c.Objects.MaxObjectSize != 5<<30 {
		t.Errorf("keys %+v, max_object_size %d", c.Keys, c.Objects.MaxObjectSize)
	}
	p := c.UserPools[0]
	want := config.TokenLifetimes{ID: time.Hour, Access: time.Hour, Refresh: 720 * time.Hour, RotateRefresh: true,
		RefreshGrace: 30 * time.Second, Session: 3 * time.Minute, Code: 5 * time.Minute}
	if p.Tokens != want {
		t.Errorf("tokens %+v, want %+v", p.Tokens, want)
	}
	if p.PasswordPolicy.MinLength != 10 || p.Lockout != (config.Lockout{MaxFailures: 5, Window: 15 * time.Minute}) || p.MaxActorChain != 5 {
		t.Errorf("pool %+v", p)
	}
	for _, r := range c.IAM.Roles {
		if r.MaxSession != time.Hour {
			t.Errorf("role %s max_session %v", r.Name, r.MaxSession)
		}
	}
	a := c.Gateway.Authorizers[0]
	if a.Skew != 30*time.Second || !slices.Equal(a.TokenUse, []string{"access"}) {
		t.Errorf("authorizer %+v", a)
	}
	for _, r := range c.Gateway.Routes {
		if r.Timeout != 30*time.Second || r.MaxBody != 10<<20 || r.RateLimit != 0 {
			t.Errorf("route %+v", r)
		}
	}
	if f := c.Gateway.Functions[0]; f.Timeout != 10*time.Second || f.Concurrency != 2 {
		t.Errorf("function %+v", f)
	}
}

// TestZeroSizesMeanTheDefault: objects.max_object_size and a route's
// max_body written as 0 still mean the default, as writ documented before
// zeros were told apart.
func TestZeroSizesMeanTheDefault(t *testing.T) {
	c, err := config.Parse(zeroFile(map[string]string{"OBJECTS": ", max_object_size: 0", "ROUTE": ", max_body: 0"}), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Objects.MaxObjectSize != 5<<30 || c.Gateway.Routes[0].MaxBody != 10<<20 {
		t.Errorf("max_object_size %d, max_body %d", c.Objects.MaxObjectSize, c.Gateway.Routes[0].MaxBody)
	}
}

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writ-id/writ/examples"
)

// runWrit runs the binary and returns its stdout, stderr and exit code.
func runWrit(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(writBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// writeReference writes the reference configuration, edited by the
// old/new pairs of edits (each must apply), into a new directory.
func writeReference(t *testing.T, edits ...string) string {
	t.Helper()
	s := string(examples.ReferenceConfig)
	for i := 0; i < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("the reference configuration has no %q", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), "writ.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writ config check refuses what writ serve refuses, every problem at once
// with its YAML path: role and user policies that IAM does not parse, a
// negative rate limit, two components on one address, a seed password
// the pool's policy forbids.
func TestConfigCheckRefusesWhatServeRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if out, errs, code := runWrit(t, "config", "check", writeReference(t)); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("reference: %d %s%s", code, out, errs)
	}
	bad := writeReference(t,
		`{"Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"}`, `{"Effect": "Permit", "Principal": {"Federated": "cognito-identity.amazonaws.com"}`,
		`"Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],`, `"Actions": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],`,
		`"Condition": {"StringEquals": {"cognito-identity`, `"Condition": {"StringEqualz": {"cognito-identity`,
		`{"Effect": "Allow", "Action": "*", "Resource": "*"}`, `{"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}`,
		`password: Bob-Passw0rd1`, `password: bob-passw0rd1`,
		`propagate: forward `, "rate_limit: -1\n      propagate: forward ")
	out, errs, code := runWrit(t, "config", "check", bad)
	if code != 1 || strings.Contains(out, "OK") {
		t.Fatalf("bad file: exit %d, want 1\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"6 problem(s)",
		`iam.roles[0].trust: Statement[0].Effect: must be "Allow" or "Deny" (line 110)`,
		`iam.roles[0].policy: Statement[0].Actions: unknown element (line 121)`,
		`iam.roles[1].trust: Statement[0].Condition.StringEqualz: unknown operator "StringEqualz" (line 131)`,
		`iam.users[0].policy: Statement[0]: an identity policy has no Principal (line 147)`,
		`user_pools[0].users[1].password: breaks the pool's password_policy: Password must have uppercase characters (line 84)`,
		`gateway.routes[0].rate_limit: must not be negative (requests per second; 0 means unlimited) (line 165)`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(errs, "bob-passw0rd1") {
		t.Error("the password is printed")
	}
	if t.Failed() {
		t.Log(errs)
	}
}

// A trusted_proxies entry that trusts everyone is accepted with a warning
// naming it, on stderr; the reference configuration gets none.
func TestConfigCheckWarnsOfBroadTrustedProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, errs, code := runWrit(t, "config", "check", writeReference(t)); code != 0 || strings.Contains(errs, "warning") {
		t.Fatalf("reference: %d %s", code, errs)
	}
	cfg := writeReference(t, `gateway:  { listen: 127.0.0.1:8480 }`, `gateway:  { listen: 127.0.0.1:8480, trusted_proxies: [10.0.0.0/8, 0.0.0.0/0] }`)
	out, errs, code := runWrit(t, "config", "check", cfg)
	if code != 0 || !strings.Contains(out, "OK") ||
		!strings.Contains(errs, `warning: serve.gateway.trusted_proxies[1]: "0.0.0.0/0" trusts every IPv4 address`) || strings.Count(errs, "warning") != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

// A bad flag is a usage error: exit 2, the error printed once, with the
// command's usage.
func TestFlagErrorsAreUsageErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cfg := writeReference(t)
	for _, c := range []struct {
		args       []string
		msg, usage string
	}{
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus", "Usage: writ serve -c FILE"},
		{[]string{"serve", "-c"}, "flag needs an argument: -c", "Usage: writ serve -c FILE"},
		{[]string{"bench", "--bogus"}, "flag provided but not defined: -bogus", "Usage: writ bench"},
		{[]string{"config", "check", "--bogus", cfg}, "flag provided but not defined: -bogus", "Usage: writ config check FILE"},
		{[]string{"keys", "list", "-c", cfg, "--pool"}, "flag needs an argument: -pool", "Usage: writ keys list"},
		{[]string{"outbox", "-x"}, "flag provided but not defined: -x", "Usage: writ outbox"},
		{[]string{"users", "get", "alice", "-c", cfg, "--bogus"}, "flag provided but not defined: -bogus", "Usage: writ users COMMAND"},
		{[]string{"audit", "query", "-c", cfg, "--since"}, "flag needs an argument: -since", "Usage: writ audit query"},
	} {
		out, errs, code := runWrit(t, c.args...)
		if code != 2 || strings.Count(out+errs, c.msg) != 1 || !strings.Contains(errs, c.usage) {
			t.Errorf("%v: exit %d, want 2 with %q once and the usage\n%s%s", c.args, code, c.msg, out, errs)
		}
	}
	// The usage errors that commands report themselves are unchanged.
	if _, errs, code := runWrit(t, "serve"); code != 2 || strings.Count(errs, "serve needs -c FILE") != 1 {
		t.Errorf("serve without -c: exit %d\n%s", code, errs)
	}
	if _, errs, code := runWrit(t, "serve", "--help"); code != 0 || !strings.Contains(errs, "Usage: writ serve") {
		t.Errorf("serve --help: exit %d\n%s", code, errs)
	}
	// Arguments a command does not take, and values it cannot use, are
	// usage errors too, not ignored.
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"serve", "-c", cfg, "extra"}, `serve takes no argument "extra"`},
		{[]string{"version", "extra"}, `version takes no argument "extra"`},
		{[]string{"outbox", "-c", cfg, "extra"}, `outbox takes no argument "extra"`},
		{[]string{"audit", "query", "-c", cfg, "--outcome", "bogus"}, "--outcome is allow, deny or error"},
		{[]string{"bench", "--duration", "0s"}, "bench needs a positive --duration and --concurrency"},
		{[]string{"bench", "--concurrency", "0"}, "bench needs a positive --duration and --concurrency"},
	} {
		if out, errs, code := runWrit(t, c.args...); code != 2 || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, want 2 with %q\n%s%s", c.args, code, c.msg, out, errs)
		}
	}
}

// writ users takes flags before and after its positional arguments, as
// its usage shows them; after "--" every argument is positional.
func TestUsersFlagsAfterArguments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts writ serve")
	}
	cfg := testConfig(t, t.TempDir())
	startServe(t, cfg)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"create", "-c", cfg, "dave", "--email", "d@ex.com", "--as", "admin", "--temp-password", "Temp-Passw0rd1"}, 0, "dave\tFORCE_CHANGE_PASSWORD"},
		{[]string{"get", "dave", "-c", cfg, "--as", "admin"}, 0, "email=d@ex.com"},
		{[]string{"get", "nosuchuser", "-c", cfg, "--as", "admin"}, 1, "UserNotFoundException"},
		{[]string{"set-password", "--as=admin", "dave", "-c", cfg, "--", "-Dave-Passw0rd1"}, 0, "OK"},
		{[]string{"get", "-c", cfg, "dave", "--as", "admin"}, 0, "dave\tCONFIRMED"},
		{[]string{"set-password", "dave", "Dave-Passw0rd2", "-c", cfg, "--temporary", "--as", "admin"}, 0, "OK"},
		{[]string{"get", "dave", "--as", "admin", "-c", cfg}, 0, "dave\tFORCE_CHANGE_PASSWORD"},
		{[]string{"add-to-group", "dave", "-c", cfg, "staff", "--as", "admin"}, 0, "OK"},
		{[]string{"get", "dave", "nosuchuser", "-c", cfg, "--as", "admin"}, 2, "users get takes 1 argument(s)"},
		{[]string{"get", "dave", "--as", "admin"}, 2, "users needs -c FILE"},
	} {
		out, errs, code := runWrit(t, append([]string{"users"}, c.args...)...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("users %v: exit %d, want %d with %q\n%s%s", c.args, code, c.code, c.want, out, errs)
		}
	}
}

// A configuration error never echoes the value it refuses: a secret
// written where a list or a mapping belongs stays out of the output.
func TestConfigErrorsDoNotEchoSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bad := writeReference(t,
		"data_dir: ./writ-data\n", "data_dir: ./writ-data\nmaster_key: kDk8Pr1oZ3yQd3Z0dFhS5mJtB7eB0pQ6oWcN3aYv1xE=\nprevious_master_keys: SOMEKEY=\n",
		"client: { client_id: api-gateway, secret: gateway-demo-secret, user_pool: us-east-1_WritDemo1 }", "client: gateway-demo-secret")
	out, errs, code := runWrit(t, "config", "check", bad)
	if code != 1 || !strings.Contains(errs, "previous_master_keys: want a list, got a string") ||
		!strings.Contains(errs, "gateway.client: want a mapping, got a string") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, secret := range []string{"SOMEKEY", "gateway-demo-secret"} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("%s printed:\n%s", secret, errs)
		}
	}
}

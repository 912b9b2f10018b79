package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/apptest"
	"github.com/writ-id/writ/internal/config"
)

// TestUsersCommand drives `writ users` against a running writ, signing
// as the reference file's admin IAM user.
func TestUsersCommand(t *testing.T) {
	env := apptest.Start(t)
	dir := t.TempDir()
	// A config file naming the running idp.
	s := regexp.MustCompile(`idp:\s+\{[^}]*\}`).ReplaceAllString(string(examples.ReferenceConfig),
		"idp: { listen: "+env.Cfg.Serve.IDP.Listen+", public_url: "+env.App.URL(app.IDP)+" }")
	file := filepath.Join(dir, "writ.yaml")
	os.WriteFile(file, []byte(s), 0o600)
	if _, err := config.Load(file); err != nil {
		t.Fatal(err)
	}
	reorder := func(args ...string) (string, int) {
		// flags before positional arguments, as the flag package wants
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return out.String() + errb.String(), code
	}
	if out, code := reorder("users", "create", "-c", file, "--as", "admin", "--email", "hugo@example.com", "--temp-password", "Temp-Passw0rd1", "hugo"); code != 0 || !strings.Contains(out, "FORCE_CHANGE_PASSWORD") {
		t.Fatalf("create: %d %s", code, out)
	}
	if out, code := reorder("users", "set-password", "-c", file, "--as", "admin", "hugo", "Hugo-Passw0rd1"); code != 0 {
		t.Fatalf("set-password: %d %s", code, out)
	}
	if out, code := reorder("users", "add-to-group", "-c", file, "--as", "admin", "hugo", "staff"); code != 0 {
		t.Fatalf("add-to-group: %d %s", code, out)
	}
	if out, code := reorder("users", "get", "-c", file, "--as", "admin", "hugo"); code != 0 || !strings.Contains(out, "CONFIRMED") || !strings.Contains(out, "email=hugo@example.com") {
		t.Fatalf("get: %d %s", code, out)
	}
	if out, code := reorder("users", "list", "-c", file, "--as", "admin", "--filter", `username ^= "h"`); code != 0 || !strings.Contains(out, "hugo") || strings.Contains(out, "alice") {
		t.Fatalf("list: %d %s", code, out)
	}
	if out, code := reorder("users", "delete", "-c", file, "--as", "admin", "hugo"); code != 0 {
		t.Fatalf("delete: %d %s", code, out)
	}
	if out, code := reorder("users", "get", "-c", file, "--as", "admin", "hugo"); code == 0 || !strings.Contains(out, "UserNotFoundException") {
		t.Fatalf("get after delete: %d %s", code, out)
	}
}

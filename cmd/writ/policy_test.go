package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyCommands(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "p.json")
	os.WriteFile(pol, []byte(`{"Version":"2012-10-17","Statement":[{"Sid":"OwnPrefix","Effect":"Allow","Action":"s3:GetObject",
		"Resource":"arn:aws:s3:::writ-demo/private/${cognito-identity.amazonaws.com:sub}/*"}]}`), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}]}`), 0o600)
	run1 := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return out.String() + errb.String(), code
	}
	if out, code := run1("policy", "check", pol); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check: %d %s", code, out)
	}
	if out, code := run1("policy", "check", bad); code == 0 || !strings.Contains(out, "Statement[0].Condition.StringEqualz") {
		t.Fatalf("check bad: %d %s", code, out)
	}
	out, code := run1("policy", "simulate", "--policy", pol, "--action", "s3:GetObject",
		"--resource", "arn:aws:s3:::writ-demo/private/alice/x", "--context", "cognito-identity.amazonaws.com:sub=alice")
	if code != 0 || !strings.Contains(out, "ALLOW") || !strings.Contains(out, "OwnPrefix") {
		t.Fatalf("simulate allow: %d %s", code, out)
	}
	out, code = run1("policy", "simulate", "--policy", pol, "--action", "s3:GetObject",
		"--resource", "arn:aws:s3:::writ-demo/private/bob/x", "--context", "cognito-identity.amazonaws.com:sub=alice")
	if code != 1 || !strings.Contains(out, "DENY (implicit)") || !strings.Contains(out, "resource arn:aws:s3:::writ-demo/private/bob/x does not match") {
		t.Fatalf("simulate deny: %d %s", code, out)
	}
}

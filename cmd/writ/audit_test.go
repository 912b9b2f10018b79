package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	_ "modernc.org/sqlite"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
	"github.com/writ-id/writ/sdk"
)

// copyTree copies the directory holding cfg (file and data) to a new place.
func copyTree(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	if out, err := exec.Command("cp", "-a", from+"/.", to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return to
}

func TestAuditVerifyAndQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := startServe(t, cfg)
	c := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url("idp")), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
			AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": "Bob-Passw0rd1"}})
		c.InitiateAuth(ctx, &cip.InitiateAuthInput{AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: aws.String("demo-web"),
			AuthParameters: map[string]string{"USERNAME": "bob", "PASSWORD": "wrong-Passw0rd1"}})
	}
	bin := writBinary(t)
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	// While the server runs its stream is open but live: verify passes.
	s.url("idp")
	deadline := time.Now().Add(5 * time.Second)
	out, code := run("audit", "verify", "-c", cfg)
	for !strings.Contains(out, "LIVE: stream") && time.Now().Before(deadline) { // the writer lingers before it writes
		time.Sleep(100 * time.Millisecond)
		out, code = run("audit", "verify", "-c", cfg)
	}
	if code != 0 || !strings.Contains(out, "LIVE: stream") || !strings.Contains(out, "OK: every chain is intact, and closed or being written") {
		t.Fatalf("verify while the server runs: %d\n%s", code, out)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-s.done; err != nil {
		t.Fatalf("stop: %v", err)
	}
	// Stopped: every stream must be closed (its opening and closing
	// checkpoints signed).
	out, code = run("audit", "verify", "-c", cfg, "--live-within", "0")
	if code != 0 || !strings.Contains(out, "OK: every chain is intact") || !strings.Contains(out, "2 signed checkpoints") {
		t.Fatalf("verify on an intact trail: %d\n%s", code, out)
	}
	verified := out
	out, code = run("audit", "query", "-c", cfg, "--outcome", "deny", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("query --outcome deny: %d\n%s", code, out)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "component", "action", "outcome", "request_id", "sub", "actor_chain"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("JSON event lacks %s: %v", k, ev)
		}
	}
	if ev["component"] != "idp" || ev["username"] != "bob" || ev["request_id"] == "" {
		t.Errorf("event: %v", ev)
	}
	out, _ = run("audit", "query", "-c", cfg, "--request-id", ev["request_id"].(string))
	if strings.Count(strings.TrimSpace(out), "\n") != 1 || !strings.Contains(out, "InitiateAuth") {
		t.Errorf("query --request-id:\n%s", out)
	}

	tamper := map[string]func(db *sql.DB) error{
		"edited": func(db *sql.DB) error {
			_, err := db.Exec(`UPDATE audit_events SET outcome = 'allow' WHERE outcome = 'deny' AND id = (SELECT MIN(id) FROM audit_events WHERE outcome = 'deny')`)
			return err
		},
		"edited inside its record": func(db *sql.DB) error {
			_, err := db.Exec(`UPDATE audit_events SET record = json_set(record, '$.username', 'mallory') WHERE id = (SELECT MIN(id) FROM audit_events WHERE record->>'username' = 'bob')`)
			return err
		},
		// What SQL reads (record->>'action', the first of a key twice) is
		// not what the writer hashed: the row is refused as altered.
		"a key twice in its record": func(db *sql.DB) error {
			_, err := db.Exec(`UPDATE audit_events SET record = replace(record, '{"action"', '{"action":"DELETE /admin/everything","action"') WHERE id = (SELECT MIN(id) FROM audit_events WHERE record->>'username' = 'bob')`)
			return err
		},
		"a key miscased in its record": func(db *sql.DB) error {
			_, err := db.Exec(`UPDATE audit_events SET record = replace(record, '{"action"', '{"Action":"DELETE /admin/everything","action"') WHERE id = (SELECT MIN(id) FROM audit_events WHERE record->>'username' = 'bob')`)
			return err
		},
		"record made unreadable": func(db *sql.DB) error {
			_, err := db.Exec(`UPDATE audit_events SET record = '{not json' WHERE id = (SELECT MIN(id) + 1 FROM audit_events)`)
			return err
		},
		"deleted": func(db *sql.DB) error {
			_, err := db.Exec(`DELETE FROM audit_events WHERE id = (SELECT MIN(id) + 2 FROM audit_events)`)
			return err
		},
		"swapped": func(db *sql.DB) error {
			// Exchange the contents of two neighbouring rows (all but their ids).
			cols := "stream, seq, time, component, outcome, sub, request_id, record"
			_, err := db.Exec(`CREATE TEMP TABLE t AS SELECT id, ` + cols + ` FROM audit_events WHERE id IN (SELECT MIN(id)+1 FROM audit_events UNION SELECT MIN(id)+2 FROM audit_events)`)
			if err != nil {
				return err
			}
			sets := []string{}
			for _, c := range strings.Split(cols, ", ") {
				sets = append(sets, c+" = (SELECT "+c+" FROM t WHERE t.id != audit_events.id)")
			}
			_, err = db.Exec(`UPDATE audit_events SET seq = -seq WHERE id IN (SELECT id FROM t)`) // dodge UNIQUE(stream, seq) midway
			if err != nil {
				return err
			}
			_, err = db.Exec(`UPDATE audit_events SET ` + strings.Join(sets, ", ") + ` WHERE id IN (SELECT id FROM t)`)
			return err
		},
		"tail cut": func(db *sql.DB) error {
			_, err := db.Exec(`DELETE FROM audit_events WHERE id > (SELECT MAX(id) - 2 FROM audit_events)`)
			return err
		},
		// Every stream, whole: only the anchor an earlier verify printed
		// tells (below, the verify is given it).
		"emptied": func(db *sql.DB) error {
			_, err := db.Exec(`DELETE FROM audit_events`)
			return err
		},
	}
	anchor := regexp.MustCompile(`ANCHOR: (\S+)`).FindStringSubmatch(verified)
	if anchor == nil {
		t.Fatalf("verify printed no anchor:\n%s", verified)
	}
	for name, fn := range tamper {
		t.Run(name, func(t *testing.T) {
			d := copyTree(t, dir)
			db, err := sql.Open("sqlite", filepath.Join(d, "writ-data", "writ.db"))
			if err != nil {
				t.Fatal(err)
			}
			if err := fn(db); err != nil {
				t.Fatal(err)
			}
			db.Close()
			out, code := run("audit", "verify", "-c", filepath.Join(d, "writ.yaml"), "--live-within", "0", "--anchor", anchor[1])
			if code == 0 || !(strings.Contains(out, "BROKEN") || strings.Contains(out, "OPEN")) {
				t.Fatalf("verify after the trail was %s: %d\n%s", name, code, out)
			}
			t.Logf("%s → %s", name, strings.TrimSpace(out))
		})
	}
}

// TestServiceEventsThroughTheCLI: a service's event, sent with the SDK's
// audit client to a running `writ serve`, is printed by
// `writ audit query --json` (on the stopped server's data) with the
// service's name as component, and `writ audit verify` covers it.
func TestServiceEventsThroughTheCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	yml := strings.Replace(string(b), "    resource_servers:                # custom scopes are <identifier>/<scope>\n",
		"    resource_servers:                # custom scopes are <identifier>/<scope>\n      - { identifier: writ, scopes: [audit.write] }\n", 1)
	yml = strings.Replace(yml, "        scopes: [https://api.demo.local/files.read]\n", "        scopes: [https://api.demo.local/files.read, writ/audit.write]\n", 1)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, cfg)
	ctx := context.Background()
	trail, err := sdk.NewAuditClient(sdk.AuditConfig{URL: s.url("identity") + "/audit/events", Component: "orders",
		Credentials: sdk.ClientCredentials{TokenURL: s.url("idp") + "/us-east-1_WritDemo1/oauth2/token", ClientID: "orders-service", ClientSecret: "orders-demo-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	trail.Record(sdk.WithRequest(ctx, "cli-svc-1", ""), sdk.AuditEvent{Action: "orders:Cancel", Outcome: sdk.AuditDeny, Reason: "order already shipped",
		Sub: "3f1f0c5d-7b21-4a8e-9a51-2a7c5e0e6f43", ActorChain: []string{"api-gateway"}})
	if err := trail.Close(ctx); err != nil || trail.Dropped() != 0 {
		t.Fatalf("audit client: %v, dropped %d", err, trail.Dropped())
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-s.done; err != nil {
		t.Fatalf("stop: %v", err)
	}
	out, err := exec.Command(writBinary(t), "audit", "query", "-c", cfg, "--request-id", "cli-svc-1", "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("audit query: %v %s", err, out)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &ev); err != nil {
		t.Fatalf("one JSON line expected: %v\n%s", err, out)
	}
	chain, _ := ev["actor_chain"].([]any)
	if ev["component"] != "orders" || ev["action"] != "orders:Cancel" || ev["outcome"] != "deny" || ev["request_id"] != "cli-svc-1" ||
		ev["sub"] != "3f1f0c5d-7b21-4a8e-9a51-2a7c5e0e6f43" || len(chain) != 1 || chain[0] != "api-gateway" || ev["time"] == nil {
		t.Fatalf("service event as printed: %v", ev)
	}
	if out, err := exec.Command(writBinary(t), "audit", "verify", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("audit verify: %v %s", err, out)
	}
}

// TestAuditTail: `writ audit tail --sub` prints the subject's events as
// they are stored, across many buckets of other subjects' events, and
// nobody else's; an interrupt ends it with status 0.
// tail runs `writ audit tail -c cfgPath args...` and returns its next
// JSON line (failing when none comes) and a stop that interrupts it and
// checks it printed nothing more and exited 0.
func tail(t *testing.T, cfgPath string, args ...string) (next func() map[string]any, stop func()) {
	t.Helper()
	cmd := exec.Command(writBinary(t), append([]string{"audit", "tail", "-c", cfgPath, "--json"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next = func() map[string]any {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("tail ended")
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("%v: %q", err, l)
			}
			return ev
		case <-time.After(15 * time.Second):
			t.Fatal("tail printed nothing")
		}
		return nil
	}
	stop = func() {
		t.Helper()
		cmd.Process.Signal(os.Interrupt)
		for l := range lines {
			t.Errorf("after the last event: %q", l)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("tail after an interrupt: %v", err)
		}
	}
	return next, stop
}

// auditAppender appends events of one subject to st's trail, on one stream.
func auditAppender(t *testing.T, st store.AuditLog) func(tx store.AuditLog, sub string, n int) {
	seq := int64(0)
	return func(tx store.AuditLog, sub string, n int) {
		t.Helper()
		evs := make([]store.AuditEvent, n)
		for i := range evs {
			seq++
			evs[i] = store.AuditEvent{Stream: "tail-test", Seq: seq, Time: time.Now(), Component: "orders", Action: "read",
				Outcome: "allow", Sub: sub, RequestID: fmt.Sprintf("%s-%d", sub, seq)}
		}
		if _, err := tx.AppendAudit(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditTail(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cfgPath := testConfig(t, t.TempDir())
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	add := auditAppender(t, st)
	add(st, "dave", 3000)
	add(st, "carol", 1)
	add(st, "dave", 6000)

	next, stop := tail(t, cfgPath, "--sub", "carol")
	if ev := next(); ev["request_id"] != "carol-3001" || ev["sub"] != "carol" {
		t.Fatalf("first: %v", ev)
	}
	add(st, "dave", 5000)
	add(st, "carol", 1)
	if ev := next(); ev["request_id"] != "carol-14002" {
		t.Fatalf("followed: %v", ev)
	}
	stop()
}

// With PostgreSQL behind several replicas, an append that took lower ids
// can commit after one that took higher ids: tail prints it when it
// commits.
func TestAuditTailLateCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if os.Getenv("WRIT_TEST_POSTGRES") == "" {
		t.Skip("WRIT_TEST_POSTGRES not set: PostgreSQL tests skipped")
	}
	cfgPath := testConfig(t, t.TempDir())
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, append([]byte("store: "+postgres.TestSchema(t)+"\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	add := auditAppender(t, st)
	add(st, "carol", 1)
	next, stop := tail(t, cfgPath, "--sub", "carol")
	if ev := next(); ev["request_id"] != "carol-1" {
		t.Fatalf("first: %v", ev)
	}
	appended, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- st.InTx(ctx, func(tx store.Tx) error {
			add(tx, "carol", 1) // carol-2, committed last
			close(appended)
			<-release
			return nil
		})
	}()
	<-appended
	add(st, "carol", 1) // carol-3
	if ev := next(); ev["request_id"] != "carol-3" {
		t.Fatalf("second: %v", ev)
	}
	time.Sleep(time.Second) // tail polls (twice a second) while carol-2 is uncommitted
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev["request_id"] != "carol-2" {
		t.Fatalf("committed late: %v", ev)
	}
	stop()
}

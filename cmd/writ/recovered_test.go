package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/store/sqlite"
)

// TestAuditVerifyRecovered: a data_dir whose trail has the stream of a
// writer that crashed, sealed by a writer that ran on after it: `writ
// audit verify` on the stopped server passes and says RECOVERED, with the
// events after the stream's last checkpoint that no signature covers.
func TestAuditVerifyRecovered(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	data := filepath.Join(dir, "writ-data")
	master, err := keys.LoadMasterKeys(data, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(data, "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now().Add(-time.Hour)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx, quiet := context.Background(), slog.New(slog.DiscardHandler)
	record := func(w *audit.Writer, actions ...string) {
		for _, a := range actions {
			w.Record(ctx, audit.Event{Component: "orders", Action: a, Outcome: audit.Allow})
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	crashed := audit.NewWriter(st, app.AuditSigner(master), quiet, audit.WithClock(clock)) // never closed
	record(crashed, "a1", "a2")
	running := audit.NewWriter(st, app.AuditSigner(master), quiet, audit.WithClock(clock))
	record(running, "r1")
	if _, err := running.Recover(ctx); err != nil { // sees the other stream
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(audit.LiveWithin + time.Second)
	mu.Unlock()
	record(running, "r2")
	if sealed, err := running.Recover(ctx); err != nil || len(sealed) != 1 || sealed[0] != crashed.Stream() {
		t.Fatalf("sealed %v, %v", sealed, err)
	}
	if err := running.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, err := exec.Command(writBinary(t), "audit", "verify", "-c", cfg, "--live-within", "0").CombinedOutput()
	want := fmt.Sprintf("RECOVERED: stream %s was sealed by a running writer", crashed.Stream())
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), "2 events after it are vouched for by no signature") ||
		!strings.Contains(string(out), "OK: every chain is intact and closed") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}

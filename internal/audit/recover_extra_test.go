package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
	"github.com/writ-id/writ/internal/store/sqlite"
)

// TestRecoverLateCommit: on PostgreSQL ids come from a sequence and
// batches commit out of order: a stream whose events took ids before a
// sealer's look but committed after it, then were pushed out of the
// trail's last events, is still found (the streams since a look are read
// from a margin before it), and sealed.
func TestRecoverLateCommit(t *testing.T) {
	if os.Getenv("WRIT_TEST_POSTGRES") == "" {
		t.Skip("WRIT_TEST_POSTGRES not set: PostgreSQL tests skipped (.ci/run sets it)")
	}
	dsn := postgres.TestSchema(t)
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Rows of a stream named in slow_streams sleep 2 s at COMMIT, after
	// their id was taken (a slow commit, a network stall).
	for _, q := range []string{
		`CREATE TABLE slow_streams (stream TEXT PRIMARY KEY)`,
		`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN IF EXISTS (SELECT 1 FROM slow_streams WHERE stream = NEW.stream) THEN PERFORM pg_sleep(2); END IF; RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON audit_events DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	f := newRecoverFixture(t, st)
	w, busy := f.writer(), f.writer()
	f.record(busy, "busy")
	f.recover(w) // the first look: every stream
	stopped := f.writer()
	if _, err := db.Exec(`INSERT INTO slow_streams VALUES ($1)`, stopped.Stream()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		stopped.Record(f.ctx, audit.Event{Component: "orders", Action: "s1", Outcome: audit.Allow})
		stopped.Flush(f.ctx)
	}()
	time.Sleep(500 * time.Millisecond) // its rows have their ids, not committed
	f.record(busy, "b")                // a later id, committed first
	f.recover(w)                       // looks: sinceID passes the stopped stream's ids
	<-done                             // now committed
	db.Exec(`DELETE FROM slow_streams`)
	more := make([]string, 4200)
	for i := range more {
		more[i] = "busy"
	}
	f.record(busy, more...)
	f.recover(w)
	f.advance(audit.LiveWithin + time.Second)
	f.record(busy, "busy")
	f.recover(w, stopped.Stream())
}

// flakyLast fails LastAuditEvent once for one stream (a timeout, a lost
// connection).
type flakyLast struct {
	store.Store
	mu     sync.Mutex
	stream string
	failed bool
}

func (f *flakyLast) LastAuditEvent(ctx context.Context, stream string) (store.AuditEvent, error) {
	f.mu.Lock()
	if stream == f.stream && !f.failed {
		f.failed = true
		f.mu.Unlock()
		return store.AuditEvent{}, errors.New("connection reset")
	}
	f.mu.Unlock()
	return f.Store.LastAuditEvent(ctx, stream)
}

// TestRecoverAfterAReadFailed: a stream whose last event could not be
// read during a sealer's walk of every stream is looked for again at the
// next look (the walk is done again), and sealed.
func TestRecoverAfterAReadFailed(t *testing.T) {
	f := newRecoverFixture(t, sqlite.OpenTest(t))
	busy, stopped := f.writer(), f.writer()
	f.record(stopped, "s1")
	more := make([]string, 4200)
	for i := range more {
		more[i] = "busy"
	}
	f.record(busy, more...) // its events out of the trail's last events
	flaky := &flakyLast{Store: f.st, stream: stopped.Stream()}
	w := audit.NewWriter(flaky, f.signer, slog.New(slog.DiscardHandler), audit.WithClock(f.clock))
	t.Cleanup(func() { w.Close(context.Background()) })
	f.record(w, "sealer")
	var all []string
	look := func() {
		s, err := w.Recover(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s...)
	}
	look() // the first walk: one read fails
	look() // looks again
	for range 3 {
		f.advance(audit.LiveWithin + time.Second)
		f.record(busy, "busy")
		look()
	}
	if len(all) != 1 || all[0] != stopped.Stream() {
		t.Fatalf("sealed %v; want [%s]", all, stopped.Stream())
	}
}

// TestRecoverBeyondMaxWatch: with more stopped streams than a writer
// watches, those left out wait their turn: once the first are sealed, the
// rest are found by the next walk, and sealed.
func TestRecoverBeyondMaxWatch(t *testing.T) {
	audit.SetMaxWatch(t, 4)
	f := newRecoverFixture(t, sqlite.OpenTest(t))
	const n = 10
	var stopped []string
	for range n {
		s := audit.NewWriter(f.st, f.signer, slog.New(slog.DiscardHandler), audit.WithClock(f.clock), audit.WithoutRecovery()) // never closed: "crashed"
		f.record(s, "s")
		stopped = append(stopped, s.Stream())
	}
	busy := f.writer()
	more := make([]string, 4200)
	for i := range more {
		more[i] = "busy"
	}
	f.record(busy, more...)
	w := audit.NewWriter(f.st, f.signer, slog.New(slog.DiscardHandler), audit.WithClock(f.clock))
	t.Cleanup(func() { w.Close(context.Background()) })
	f.record(w, "sealer")
	total := 0
	for range 10 { // a few streams a turn
		s, err := w.Recover(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += len(s)
		f.advance(audit.LiveWithin + time.Second)
		f.record(busy, "busy")
	}
	if total != n {
		t.Fatalf("sealed %d of %d stopped streams", total, n)
	}
}

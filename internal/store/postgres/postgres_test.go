package postgres_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
	"github.com/writ-id/writ/internal/store/storetest"
)

// migratedSchema returns a fresh, migrated schema's DSN and a database
// handle on it (closed when the test ends).
func migratedSchema(t *testing.T) (string, *sql.DB) {
	t.Helper()
	dsn := postgres.TestSchema(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dsn, db
}

// beforeBucketIndexes turns db's schema back to before migrations 4 and 5
// (the lookup indexes keyed by request id and subject alone).
func beforeBucketIndexes(t *testing.T, db *sql.DB) {
	t.Helper()
	for _, q := range []string{`DROP INDEX audit_request_bucket`, `DROP INDEX audit_sub_bucket`,
		`CREATE INDEX audit_request ON audit_events (request_id)`, `CREATE INDEX audit_sub ON audit_events (sub)`,
		`DELETE FROM schema_migrations WHERE version IN (4, 5)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConformance(t *testing.T) {
	postgres.TestDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return postgres.OpenTest(t) })
}

var legacy = storetest.LegacyDialect{IDType: "BIGSERIAL PRIMARY KEY", BlobType: "BYTEA",
	Param: func(i int) string { return fmt.Sprintf("$%d", i) }, LastAuditMigration: 5}

func TestAuditMigration(t *testing.T) { storetest.RunAuditMigration(t, legacy, reopenable) }

func TestGroupMigration(t *testing.T) { storetest.RunGroupMigration(t, legacy, 7, reopenable) }

// reopenable returns a handle on a fresh, migrated schema and a function
// that opens the store on it again.
func reopenable(t *testing.T) (*sql.DB, func() store.Store) {
	dsn, db := migratedSchema(t)
	return db, func() store.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestConcurrentMigrations starts several replicas on one empty schema at
// once: the advisory lock lets exactly one migrate, and all come up.
func TestConcurrentMigrations(t *testing.T) {
	dsn := postgres.TestSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestNotify checks LISTEN/NOTIFY between two stores on one database, as
// two replicas use it for key rotations.
func TestNotify(t *testing.T) {
	dsn := postgres.TestSchema(t)
	a, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 4)
	go b.(store.Notifier).Listen(ctx, "writ_test", func(p string) { got <- p })
	deadline := time.After(10 * time.Second)
	for {
		// Notifications sent before LISTEN is in place are lost: resend until heard.
		if err := a.(store.Notifier).Notify(ctx, "writ_test", "pool-1"); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			if p != "pool-1" {
				t.Fatalf("payload %q", p)
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("no notification heard")
		}
	}
}

// TestBucketIndexesBuildWhileReplicasWrite upgrades a schema holding
// 400,000 audit events to the bucketed lookup indexes (migration 4), three
// new replicas starting at once, while an old one keeps appending events:
// the indexes are built CONCURRENTLY, so its appends go on during the build
// instead of waiting for it, the replicas waiting for the migration lock do
// not hold the build up (nor deadlock with it), and the new indexes are
// valid and in use afterwards.
func TestBucketIndexesBuildWhileReplicasWrite(t *testing.T) {
	ctx := context.Background()
	dsn, db := migratedSchema(t)
	replica, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	if _, err := db.Exec(`INSERT INTO audit_events (stream, seq, time, component, outcome, sub, request_id, record)
		SELECT 'old', g, g, 'gateway', 'allow', 'user-' || (g % 1000), 'req-' || g, '{"action":"GET /"}' FROM generate_series(1, 400000) g`); err != nil {
		t.Fatal(err)
	}
	beforeBucketIndexes(t, db)
	// The appender notes when each append finished; during the upgrade no
	// gap between two may be as long as half the upgrade.
	var stop atomic.Bool
	var mu sync.Mutex
	var finished []time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := int64(1); !stop.Load(); seq++ {
			if _, err := replica.AppendAudit(ctx, []store.AuditEvent{{Stream: "live", Seq: seq, Time: time.Now(), Component: "gateway",
				Action: "GET /", Outcome: "allow", Sub: "alice", RequestID: fmt.Sprint("live-", seq)}}); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			finished = append(finished, time.Now())
			mu.Unlock()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	// Three replicas of the new version start at once: one builds, the
	// others wait for it without holding it up.
	t0 := time.Now()
	stores := make([]store.Store, 3)
	errs := make([]error, 3)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(ctx, dsn, postgres.Options{Log: log})
		}()
	}
	wg.Wait()
	t1 := time.Now()
	time.Sleep(100 * time.Millisecond)
	stop.Store(true)
	<-done
	for _, st := range stores {
		if st != nil {
			defer st.Close()
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	upgraded := stores[0]
	var gap time.Duration
	n := 0
	for i := 1; i < len(finished); i++ {
		if finished[i].After(t0) && finished[i-1].Before(t1) {
			gap = max(gap, finished[i].Sub(finished[i-1]))
			n++
		}
	}
	if gap > t1.Sub(t0)/2 {
		t.Errorf("an append waited %v of the %v upgrade: the index build held up writes", gap, t1.Sub(t0))
	}
	t.Logf("%d appends during the %v upgrade, the longest wait %v", n, t1.Sub(t0), gap)
	// The operator sees which replica builds and which wait for it.
	if out := logs.String(); strings.Count(out, "migrating outside a transaction") != 1 ||
		!strings.Contains(out, "migration=0005_audit_buckets_concurrently.sql") || !strings.Contains(out, "waiting for another process's migration") {
		t.Errorf("log:\n%s", out)
	}
	rows, err := db.Query(`SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'audit_events'::regclass AND c.relname LIKE 'audit_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	defs := map[string]string{}
	for rows.Next() {
		var name, def string
		var valid bool
		if err := rows.Scan(&name, &def, &valid); err != nil {
			t.Fatal(err)
		}
		if !valid {
			t.Errorf("index %s is not valid", name)
		}
		defs[name] = def
	}
	for name, col := range map[string]string{"audit_request_bucket": "request_id", "audit_sub_bucket": "sub"} {
		if !strings.Contains(defs[name], "((id >> 12)), "+col) {
			t.Errorf("%s: %q", name, defs[name])
		}
	}
	if len(defs) != 5 { // and the primary key, (stream, seq) and time
		t.Errorf("indexes: %v", defs)
	}
	evs, err := upgraded.ListAudit(ctx, store.AuditFilter{RequestID: "req-333333"})
	if err != nil || len(evs) != 1 || evs[0].Seq != 333333 {
		t.Fatalf("lookup after the upgrade: %v %v", evs, err)
	}
}

// TestNewDatabaseDoesNotWaitForOtherTransactions: a transaction left open
// elsewhere in the database (a dump, an idle session) does not hold up a
// replica starting on a new, empty schema: only a table that holds events
// needs its indexes built CONCURRENTLY, which waits for every older
// transaction.
func TestNewDatabaseDoesNotWaitForOtherTransactions(t *testing.T) {
	ctx := context.Background()
	other, err := sql.Open("pgx", postgres.TestDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT 1`); err != nil { // takes its snapshot
		t.Fatal(err)
	}
	octx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := postgres.Open(octx, postgres.TestSchema(t), postgres.Options{})
	if err != nil {
		t.Fatalf("opening a new schema while another transaction is open: %v", err)
	}
	s.Close()
}

// TestIndexBuildWithAnOlderReplicaWaiting: a replica of an older version
// waits for the migration lock inside a transaction, which the concurrent
// index build waits for in turn. PostgreSQL breaks the deadlock by
// aborting one of them; when it is the build, the new replica lets the
// lock go, the older one finishes, and the build runs again.
func TestIndexBuildWithAnOlderReplicaWaiting(t *testing.T) {
	ctx := context.Background()
	dsn, db := migratedSchema(t)
	if _, err := db.Exec(`INSERT INTO audit_events (stream, seq, time, component, outcome, sub, request_id, record)
		VALUES ('w', 1, 1, 'idp', 'allow', '', 'r1', '{}')`); err != nil {
		t.Fatal(err)
	}
	beforeBucketIndexes(t, db)
	// The older replica's migration transaction has its snapshot before
	// the build starts, and asks for the lock once the build waits for it.
	old, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead}) // keeps its snapshot
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback()
	if _, err := old.Exec(`SELECT 1`); err != nil {
		t.Fatal(err)
	}
	opened := make(chan error, 1)
	go func() {
		octx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		s, err := postgres.Open(octx, dsn, postgres.Options{})
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	time.Sleep(300 * time.Millisecond)
	_, lockErr := old.Exec(`SELECT pg_advisory_xact_lock(7461246)`)
	old.Rollback() // done (or aborted as the deadlock's victim)
	t.Logf("the older replica's wait for the lock: %v", lockErr)
	if err := <-opened; err != nil {
		t.Fatalf("the new replica: %v", err)
	}
	var valid int
	if err := db.QueryRow(`SELECT count(*) FROM pg_index WHERE indexrelid IN (to_regclass('audit_request_bucket'), to_regclass('audit_sub_bucket')) AND indisvalid`).Scan(&valid); err != nil || valid != 2 {
		t.Fatalf("valid bucketed indexes: %d, %v", valid, err)
	}
}

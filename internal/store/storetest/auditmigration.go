package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
)

// LegacyDialect says how a dialect spells the legacy audit table: its id
// and blob column types and its i-th placeholder (from 1). InvalidUTF8
// puts bytes that are not UTF-8 in one event's resource, as an
// unauthenticated S3 request's key could (SQLite stored them as they came).
type LegacyDialect struct {
	IDType, BlobType string
	Param            func(i int) string
	InvalidUTF8      bool
	// LastAuditMigration is the dialect's last migration of the audit
	// table: setUpLegacyAudit forgets 3 to it, so the next Open runs them.
	LastAuditMigration int
}

// RunAuditMigration opens a database whose audit table predates migration
// 3 and checks the migrated events and their chain; and that an edited
// legacy row neither stops the migration nor escapes verification.
// migrated returns a handle on a fresh, migrated database and a function
// that closes the handle and opens the store on the database again.
func RunAuditMigration(t *testing.T, d LegacyDialect, migrated func(t *testing.T) (*sql.DB, func() store.Store)) {
	for _, tampered := range []bool{false, true} {
		t.Run(fmt.Sprintf("tampered=%v", tampered), func(t *testing.T) {
			db, reopen := migrated(t)
			evs := setUpLegacyAudit(t, db, d)
			if tampered {
				tamperLegacyAudit(t, db)
			}
			st := reopen()
			defer st.Close()
			if tampered {
				checkMigratedTamperedAudit(t, st)
			} else {
				checkMigratedAudit(t, st, evs)
			}
		})
	}
}

// legacyAuditDDL is the audit table as migrations 1 and 2 left it (one
// column per field), the %s the dialect's id and blob column types.
const legacyAuditDDL = `CREATE TABLE audit_events (
  id %s, stream TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL, component TEXT NOT NULL,
  action TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, explanation TEXT NOT NULL, pool_id TEXT NOT NULL,
  sub TEXT NOT NULL, username TEXT NOT NULL, client_id TEXT NOT NULL, actor_chain TEXT NOT NULL, identity_id TEXT NOT NULL,
  role TEXT NOT NULL, resource TEXT NOT NULL, request_id TEXT NOT NULL, trace_id TEXT NOT NULL, source_ip TEXT NOT NULL,
  prev_hash %s, hash %s, UNIQUE (stream, seq)
)`

// legacyAuditInsert inserts one row into the legacy table.
const legacyAuditInsert = `INSERT INTO audit_events (stream, seq, time, component, action, outcome, reason, explanation,
  pool_id, sub, username, client_id, actor_chain, identity_id, role, resource, request_id, trace_id, source_ip, prev_hash, hash)
  VALUES (%s)`

// legacyAuditValues returns e's values for legacyAuditInsert, actor chain as
// the JSON text writ stored ("[]" when empty, as it wrote it).
func legacyAuditValues(e store.AuditEvent, chain string) []any {
	return []any{e.Stream, e.Seq, e.Time.UnixMilli(), e.Component, e.Action, e.Outcome, e.Reason, e.Explanation, e.PoolID, e.Sub,
		e.Username, e.ClientID, chain, e.IdentityID, e.Role, e.Resource, e.RequestID, e.TraceID, e.SourceIP, e.PrevHash, e.Hash}
}

// setUpLegacyAudit turns db, a store's database, back to before migration
// 3: it replaces the audit table with the legacy one holding the events
// legacyAuditChain returns, and forgets the migration, so that the next
// Open runs it.
func setUpLegacyAudit(t *testing.T, db *sql.DB, d LegacyDialect) []store.AuditEvent {
	t.Helper()
	for _, q := range []string{`DROP TABLE audit_events`, fmt.Sprintf(legacyAuditDDL, d.IDType, d.BlobType, d.BlobType),
		// The indexes as migration 1 made them.
		`CREATE INDEX audit_request ON audit_events (request_id)`, `CREATE INDEX audit_sub ON audit_events (sub)`,
		`CREATE INDEX audit_time ON audit_events (time)`,
		fmt.Sprintf(`DELETE FROM schema_migrations WHERE version BETWEEN 3 AND %d`, d.LastAuditMigration)} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var ps []string
	for i := range 21 {
		ps = append(ps, d.Param(i+1))
	}
	evs, chains := legacyAuditChain(d.InvalidUTF8)
	for i, e := range evs {
		if _, err := db.Exec(fmt.Sprintf(legacyAuditInsert, strings.Join(ps, ",")), legacyAuditValues(e, chains[i])...); err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

// legacyAuditChain returns a hash-chained stream of events (an odd one
// with every field set, and plain ones with empty fields and no actor
// chain) as a writer made them before migration 3, each with the actor
// chain's JSON text as it was stored.
func legacyAuditChain(invalidUTF8 bool) ([]store.AuditEvent, []string) {
	odd := OddAuditEvent("legacy", 1)
	odd.Reason = strings.ReplaceAll(odd.Reason, "\x00", "") // PostgreSQL's text columns never held one
	evs := []store.AuditEvent{odd,
		{Stream: "legacy", Seq: 2, Time: t0, Component: "gateway", Action: "GET /whoami", Outcome: "allow", RequestID: "r2"},
		{Stream: "legacy", Seq: 3, Time: t0, Component: "idp", Action: "InitiateAuth", Outcome: "error", Sub: "s", ActorChain: []string{}}}
	if invalidUTF8 {
		evs[1].Resource, evs[1].Reason = "arn:aws:s3:::bucket/k\xff\xfe", "bad \xc3\x28 sequence"
	}
	chains := []string{`["svc-b","svc \"a\""]`, `[]`, `[]`}
	var prev []byte
	for i := range evs {
		evs[i].PrevHash = prev
		evs[i].Hash = audit.Hash(evs[i])
		prev = evs[i].Hash
	}
	return evs, chains
}

// checkMigratedAudit checks that st, migrated from a legacy table holding
// want (inserted in order), returns every event as it was and that the
// chain still verifies.
func checkMigratedAudit(t *testing.T, st store.Store, want []store.AuditEvent) {
	t.Helper()
	got, err := st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events after the migration, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.ID = got[i].ID
		if len(w.ActorChain) == 0 {
			w.ActorChain = got[i].ActorChain // nil and empty hash alike
		}
		if len(w.PrevHash) == 0 && len(got[i].PrevHash) == 0 {
			w.PrevHash = got[i].PrevHash
		}
		if !reflect.DeepEqual(got[i], w) {
			t.Errorf("event %d after the migration:\n got %#v\nwant %#v", i, got[i], w)
		}
	}
	rep, err := audit.Verify(context.Background(), st, nil, audit.VerifyOptions{Live: map[string]bool{"legacy": true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Events != len(want) {
		t.Fatalf("verify after the migration: %+v", rep)
	}
	// New events append after the migrated ones.
	next := OddAuditEvent("legacy", int64(len(want)+1))
	ids, err := st.AppendAudit(context.Background(), []store.AuditEvent{next})
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] <= got[len(got)-1].ID {
		t.Fatalf("new event id %d not after the migrated ones (%d)", ids[0], got[len(got)-1].ID)
	}
}

// tamperLegacyAudit replaces the actor chain of the legacy table's first
// event (two actors) with text that is not JSON, as an edit could.
func tamperLegacyAudit(t *testing.T, db *sql.DB) {
	t.Helper()
	if _, err := db.Exec(`UPDATE audit_events SET actor_chain = 'not json' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
}

// checkMigratedTamperedAudit checks that the migration ran over the
// tampered legacy table and that verification finds the edited event.
func checkMigratedTamperedAudit(t *testing.T, st store.Store) {
	t.Helper()
	rep, err := audit.Verify(context.Background(), st, nil, audit.VerifyOptions{Live: map[string]bool{"legacy": true}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 3 || len(rep.Problems) != 1 || rep.Problems[0].Seq != 1 {
		t.Fatalf("verify after migrating an edited event: %+v", rep)
	}
}

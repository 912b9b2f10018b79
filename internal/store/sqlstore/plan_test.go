package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/writ-id/writ/internal/store"
)

// TestAuditLookupPlans: SQLite answers each lookup by request id or
// subject, whatever else the filter holds, from the bucketed index that
// leads with the key, one seek per bucket: a plan that scanned the table
// would return the same events, slower with every event stored.
func TestAuditLookupPlans(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := New(context.Background(), db, &Dialect{Name: "sqlite", SerializeWrites: true}, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []struct {
		f     store.AuditFilter
		index string
	}{
		{store.AuditFilter{RequestID: "r"}, "audit_request"},
		{store.AuditFilter{RequestID: "r", AfterID: 7, Limit: 10}, "audit_request"},
		{store.AuditFilter{RequestID: "r", Component: "gateway", Outcome: "deny", Since: now, Until: now}, "audit_request"},
		{store.AuditFilter{Sub: "s"}, "audit_sub"},
		{store.AuditFilter{Sub: "s", AfterID: 7, Limit: 10, Stream: "w", Since: now}, "audit_sub"},
		{store.AuditFilter{Sub: "s", RequestID: "r"}, "audit_"},
	} {
		where, args := auditWhere(c.f)
		q := auditBucketQuery(false, where, c.f.Limit > 0)
		args = append([]any{int64(0)}, args...)
		if c.f.Limit > 0 {
			args = append(args, c.f.Limit)
		}
		rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "INDEX "+c.index) || !strings.Contains(p, "<expr>=?") || strings.Contains(p, "SCAN audit_events") {
			t.Errorf("%+v: plan %q, want a search of %s by bucket", c.f, p, c.index)
		}
	}
}

package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/store"
)

// RunGroupMigration opens a database whose groups table predates the
// migration (version) that added updated_at and unset precedences, and
// checks that its groups come through (precedence as it was, the creation
// time as the last change), that precedence can be unset afterwards, and
// that a replica of the previous version, still running during an
// upgrade, goes on writing and reading groups as it did. migrated is as
// for RunAuditMigration.
func RunGroupMigration(t *testing.T, d LegacyDialect, version int, migrated func(t *testing.T) (*sql.DB, func() store.Store)) {
	db, reopen := migrated(t)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := make([]string, 6)
	for i := range p {
		p[i] = d.Param(i + 1)
	}
	for _, q := range []struct {
		q    string
		args []any
	}{
		{q: `DROP TABLE user_groups`},
		{q: `CREATE TABLE user_groups (
  pool_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, precedence INTEGER NOT NULL,
  role_arn TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (pool_id, name))`},
		{q: fmt.Sprintf(`INSERT INTO user_groups VALUES (%s, %s, %s, %s, %s, %s)`, p[0], p[1], p[2], p[3], p[4], p[5]),
			args: []any{"p", "staff", "Staff", 3, "arn:aws:iam::000000000000:role/staff", created.UnixMilli()}},
		{q: fmt.Sprintf(`DELETE FROM schema_migrations WHERE version >= %s`, p[0]), args: []any{version}},
	} {
		if _, err := db.Exec(q.q, q.args...); err != nil {
			t.Fatalf("%s: %v", q.q, err)
		}
	}
	st := reopen()
	defer st.Close()
	ctx := context.Background()
	g, err := st.GetGroup(ctx, "p", "staff")
	if err != nil {
		t.Fatal(err)
	}
	if g.Precedence == nil || *g.Precedence != 3 || g.Description != "Staff" || g.RoleARN != "arn:aws:iam::000000000000:role/staff" ||
		!g.CreatedAt.Equal(created) || !g.UpdatedAt.Equal(created) {
		t.Fatalf("migrated group: %+v", g)
	}
	g.Precedence, g.UpdatedAt = nil, created.Add(time.Hour)
	if err := st.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if g, err := st.GetGroup(ctx, "p", "staff"); err != nil || g.Precedence != nil || !g.UpdatedAt.Equal(created.Add(time.Hour)) {
		t.Fatalf("after unsetting the precedence: %+v %v", g, err)
	}

	// The previous version's statements, on the migrated table.
	if _, err := db.Exec(fmt.Sprintf(`INSERT INTO user_groups (pool_id, name, description, precedence, role_arn, created_at)
			VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (pool_id, name) DO UPDATE SET description = excluded.description,
			precedence = excluded.precedence, role_arn = excluded.role_arn`, p[0], p[1], p[2], p[3], p[4], p[5]),
		"p", "old", "", 2, "", created.UnixMilli()); err != nil {
		t.Fatalf("the previous version's PutGroup: %v", err)
	}
	var prec, ca int64
	if err := db.QueryRow(fmt.Sprintf(`SELECT precedence, created_at FROM user_groups WHERE pool_id = %s AND name = %s`, p[0], p[1]),
		"p", "staff").Scan(&prec, &ca); err != nil || prec != math.MaxInt32 {
		t.Fatalf("the previous version's GetGroup of a group without precedence: %d %v, want the last value", prec, err)
	}
	// The previous version writing that group back as it read it (an
	// UpdateGroup of its description) leaves it without precedence.
	if _, err := db.Exec(fmt.Sprintf(`INSERT INTO user_groups (pool_id, name, description, precedence, role_arn, created_at)
			VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (pool_id, name) DO UPDATE SET description = excluded.description,
			precedence = excluded.precedence, role_arn = excluded.role_arn`, p[0], p[1], p[2], p[3], p[4], p[5]),
		"p", "staff", "Staff again", prec, "", ca); err != nil {
		t.Fatal(err)
	}
	if g, err := st.GetGroup(ctx, "p", "staff"); err != nil || g.Precedence != nil || g.Description != "Staff again" {
		t.Fatalf("after the previous version's update: %+v %v", g, err)
	}
	if g, err := st.GetGroup(ctx, "p", "old"); err != nil || g.Precedence == nil || *g.Precedence != 2 || !g.UpdatedAt.Equal(created) {
		t.Fatalf("a group the previous version wrote: %+v %v", g, err)
	}
}

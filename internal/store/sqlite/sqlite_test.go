package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/sqlite"
	"github.com/writ-id/writ/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return sqlite.OpenTest(t) })
}

func TestReopenKeepsDataAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "writ.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.CreateUser(context.Background(), store.User{PoolID: "p", Username: "u", Sub: "s", Status: "CONFIRMED", Enabled: true, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v", fi.Mode().Perm())
	}
	s, err = sqlite.Open(path) // migrations run again: idempotent
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetUser(context.Background(), "p", "u"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

// TestAuditMigration opens a database whose audit table predates migration
// 3 and checks the migrated events and their chain; and that an edited
// legacy row neither stops the migration nor escapes verification.
func TestAuditMigration(t *testing.T) {
	for _, tampered := range []bool{false, true} {
		t.Run(fmt.Sprintf("tampered=%v", tampered), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "writ.db")
			s, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			evs := storetest.SetUpLegacyAudit(t, db, "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", func(int) string { return "?" }, true)
			if tampered {
				storetest.TamperLegacyAudit(t, db)
			}
			db.Close()
			s, err = sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if tampered {
				storetest.CheckMigratedTamperedAudit(t, s)
			} else {
				storetest.CheckMigratedAudit(t, s, evs)
			}
		})
	}
}

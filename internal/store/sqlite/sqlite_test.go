package sqlite_test

import (
	"context"
	"database/sql"
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

var legacy = storetest.LegacyDialect{IDType: "INTEGER PRIMARY KEY AUTOINCREMENT", BlobType: "BLOB",
	Param: func(int) string { return "?" }, InvalidUTF8: true, LastAuditMigration: 4}

func TestAuditMigration(t *testing.T) { storetest.RunAuditMigration(t, legacy, migrated) }

func TestGroupMigration(t *testing.T) { storetest.RunGroupMigration(t, legacy, 6, migrated) }

// migrated returns a handle on a fresh, migrated database and a function
// that opens the store on the database again.
func migrated(t *testing.T) (*sql.DB, func() store.Store) {
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
	t.Cleanup(func() { db.Close() })
	// db stays open beside the store, as another process's would.
	return db, func() store.Store {
		s, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

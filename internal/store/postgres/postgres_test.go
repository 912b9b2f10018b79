package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
	"github.com/writ-id/writ/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	postgres.TestDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return postgres.OpenTest(t) })
}

// TestAuditMigration opens a schema whose audit table predates migration
// 3 and checks the migrated events and their chain; and that an edited
// legacy row neither stops the migration nor escapes verification.
func TestAuditMigration(t *testing.T) {
	for _, tampered := range []bool{false, true} {
		t.Run(fmt.Sprintf("tampered=%v", tampered), func(t *testing.T) {
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
			defer db.Close()
			evs := storetest.SetUpLegacyAudit(t, db, "BIGSERIAL PRIMARY KEY", "BYTEA", func(i int) string { return fmt.Sprintf("$%d", i) }, false)
			if tampered {
				storetest.TamperLegacyAudit(t, db)
			}
			s, err = postgres.Open(context.Background(), dsn, postgres.Options{})
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

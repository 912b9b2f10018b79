package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
	"github.com/writ-id/writ/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	postgres.TestDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return postgres.OpenTest(t) })
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

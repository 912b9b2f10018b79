// Package postgres is writ's shared store for several replicas: PostgreSQL
// through jackc/pgx/v5 (database/sql adapter, so the one sqlstore code path
// serves both backends), with SERIALIZABLE transactions retried on
// serialization failures.
package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/sqlstore"
)

// Options tune the connection pool; zero values take the defaults.
type Options struct {
	MaxOpen     int           // default 10
	MaxIdle     int           // default 5
	MaxLifetime time.Duration // default 30m
	// ConnectTimeout bounds each attempt to connect (dial, TLS,
	// authentication); default the DSN's connect_timeout, else
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	Log            *slog.Logger // hears of migrations and connections that wait (nil: none)
}

// DefaultConnectTimeout bounds an attempt to connect when neither Options
// nor the DSN (connect_timeout) set a bound: a server that accepts the
// connection and never answers fails Open instead of hanging it.
const DefaultConnectTimeout = 10 * time.Second

// Open logs that it waits for the store once it has worked for
// waitLogFirst, then every waitLogEvery.
const (
	waitLogFirst = 2 * time.Second
	waitLogEvery = 10 * time.Second
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

var dialect = &sqlstore.Dialect{
	Name:      "postgres",
	Dollar:    true,
	TxOptions: &sql.TxOptions{Isolation: sql.LevelSerializable},
	Retryable: func(err error) bool {
		c := pgCode(err)
		return c == "40001" || c == "40P01"
	},
	IsUnique:               func(err error) bool { return pgCode(err) == "23505" },
	MigrationLock:          "SELECT pg_try_advisory_xact_lock(7461246)",
	MigrationSessionLock:   "SELECT pg_try_advisory_lock(7461246)",
	MigrationSessionUnlock: "SELECT pg_advisory_unlock(7461246)",
}

// Open connects to dsn and migrates the schema. Each attempt to connect
// is bounded (see Options.ConnectTimeout); while connecting and migrating
// take long, Open logs "waiting for the store".
func Open(ctx context.Context, dsn string, o Options) (store.Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	if o.ConnectTimeout > 0 {
		cfg.ConnectTimeout = o.ConnectTimeout
	} else if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxOpen == 0 {
		o.MaxOpen = 10
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = 5
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = 30 * time.Minute
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(o.MaxOpen)
	db.SetMaxIdleConns(o.MaxIdle)
	db.SetConnMaxLifetime(o.MaxLifetime)
	defer logWhileWaiting(o.Log, cfg)()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: postgres: cannot connect to %s (each attempt bounded by %v): %w", where(cfg), cfg.ConnectTimeout, err)
	}
	s, err := sqlstore.New(ctx, db, dialect, o.Log)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	return &Store{DB: s, cfg: cfg}, nil
}

// where names the server of cfg, without credentials.
func where(cfg *pgx.ConnConfig) string {
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// logWhileWaiting logs "waiting for the store" after waitLogFirst, then
// every waitLogEvery, until the returned function is called.
func logWhileWaiting(log *slog.Logger, cfg *pgx.ConnConfig) (stop func()) {
	if log == nil {
		return func() {}
	}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTimer(waitLogFirst)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				log.Warn("waiting for the store", "store", "postgres", "server", where(cfg),
					"waited", time.Since(start).Round(time.Second).String(), "connect_timeout", cfg.ConnectTimeout.String())
				t.Reset(waitLogEvery)
			}
		}
	}()
	return func() { close(done) }
}

// TestDSN returns the DSN in WRIT_TEST_POSTGRES, or skips the test.
func TestDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("WRIT_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("WRIT_TEST_POSTGRES not set: PostgreSQL tests skipped (.ci/run sets it)")
	}
	return dsn
}

// TempSchema creates a fresh schema in the database at dsn and returns a
// DSN whose connections use it, and a function that drops it.
func TempSchema(ctx context.Context, dsn, prefix string) (string, func(), error) {
	var b [6]byte
	rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("store: postgres DSN: %w", err)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("store: create schema: %w", err)
	}
	drop := func() {
		if a, err := sql.Open("pgx", dsn); err == nil {
			a.Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// TestSchema creates a fresh schema for one test and returns a DSN whose
// connections use it; the schema is dropped when the test ends.
func TestSchema(t testing.TB) string {
	t.Helper()
	dsn, drop, err := TempSchema(context.Background(), TestDSN(t), "writ_test_")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return dsn
}

// OpenTest opens a store on a fresh schema, closed when the test ends.
func OpenTest(t testing.TB) store.Store {
	t.Helper()
	s, err := Open(context.Background(), TestSchema(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Package sqlstore implements the store contract once over database/sql,
// for every SQL backend. A Dialect holds what differs between engines:
// placeholders, how a write transaction begins, which errors mean "retry",
// and the embedded migrations.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/writ-id/writ/internal/store"
)

//go:embed migrations
var migrations embed.FS

// Dialect describes one SQL engine.
type Dialect struct {
	// Name is "sqlite" or "postgres"; it names the migrations directory.
	Name string
	// Dollar placeholders ($1, $2, …) instead of ?.
	Dollar bool
	// TxOptions for read-write transactions.
	TxOptions *sql.TxOptions
	// SerializeWrites takes a process-wide lock around write transactions
	// (SQLite: one writer at a time, no SQLITE_BUSY).
	SerializeWrites bool
	// Retryable reports an error after which the whole transaction is
	// retried (serialization failures, deadlocks, busy database).
	Retryable func(error) bool
	// IsUnique reports a unique-constraint violation.
	IsUnique func(error) bool
	// MigrationLock, if set, is a query run first in each migration's
	// transaction that tries to take the lock that serializes migrations
	// across processes (an advisory lock) without waiting, and reports
	// whether it did; the runner retries. MigrationSessionLock and
	// MigrationSessionUnlock take and release the same lock on a
	// connection, for migrations that run outside a transaction.
	MigrationLock, MigrationSessionLock, MigrationSessionUnlock string
}

// DB is a store.Store over a *sql.DB. Its aggregate methods come from the
// embedded conn: reads run as single statements, writes each in their own
// transaction.
type DB struct {
	*conn
	db        *sql.DB
	d         *Dialect
	log       *slog.Logger
	writeMu   sync.Mutex
	qcache    sync.Map   // query text -> rebound text
	stmts     sync.Map   // query text -> *sql.Stmt (SQLite)
	preparing sync.Map   // query text -> true while prepared in the background
	prepMu    sync.Mutex // guards closing and prepWG.Add
	prepWG    sync.WaitGroup
	closing   bool
}

var _ store.Store = (*DB)(nil)

// New runs the dialect's migrations on db and returns the store.
// log (nil: none) hears of migrations that wait: for another process's,
// or for older transactions.
func New(ctx context.Context, db *sql.DB, d *Dialect, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &DB{db: db, d: d, log: log}
	s.conn = &conn{s: s, q: db}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SQL returns the underlying database (for tests and tools).
func (s *DB) SQL() *sql.DB { return s.db }

func (s *DB) migrate(ctx context.Context) error {
	dir := "migrations/" + s.d.Name
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	if s.d.SerializeWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	for _, e := range entries {
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("store: migration %s: bad name", e.Name())
		}
		body, err := fs.ReadFile(migrations, dir+"/"+e.Name())
		if err != nil {
			return err
		}
		if strings.HasPrefix(string(body), noTransaction) {
			err = s.migrateOutsideTx(ctx, v, e.Name(), string(body))
		} else {
			err = s.migrateInTx(ctx, v, e.Name(), string(body))
		}
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", e.Name(), err)
		}
	}
	return nil
}

// noTransaction starts a migration whose statements cannot run in a
// transaction (PostgreSQL's CREATE INDEX CONCURRENTLY, which lets other
// replicas write the table while it builds). Each statement commits on
// its own, so the migration must be safe to run again from the start
// after a crash part-way.
const noTransaction = "-- writ:no-transaction"

// migrateInTx applies migration v in one transaction unless it is applied,
// holding the migration lock, taken without waiting inside the transaction
// (a waiting transaction would hold up another replica's CREATE INDEX
// CONCURRENTLY, which waits for every older transaction, while that
// replica holds the lock: a deadlock).
func (s *DB) migrateInTx(ctx context.Context, v int, name, body string) error {
	var tx *sql.Tx
	err := s.untilLocked(ctx, name, func() (bool, error) {
		var err error
		if tx, err = s.db.BeginTx(ctx, nil); err != nil { // the default isolation: after the lock, see what others committed
			return false, err
		}
		locked, err := tryLock(ctx, tx, s.d.MigrationLock)
		if err != nil || !locked {
			tx.Rollback()
		}
		return locked, err
	})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if done, err := s.applied(ctx, tx, v); err != nil || done {
		return err
	}
	if err := runStatements(ctx, tx, body); err != nil {
		return err
	}
	if err := s.markApplied(ctx, tx, v); err != nil {
		return err
	}
	return tx.Commit()
}

// untilLocked calls try until it reports the migration lock taken (or
// fails), saying once in the log that it waits for another process.
func (s *DB) untilLocked(ctx context.Context, name string, try func() (bool, error)) error {
	for waited := false; ; waited = true {
		locked, err := try()
		if err != nil || locked {
			return err
		}
		if !waited {
			s.log.Info("store: waiting for another process's migration", "migration", name)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// migrateOutsideTx applies migration v statement by statement on one
// connection holding the session-level migration lock, unless it is
// applied. A statement PostgreSQL aborted to break a deadlock (a replica
// of an older version waiting for the lock inside a transaction, which
// CREATE INDEX CONCURRENTLY waits for) lets the lock go, so that the
// other side finishes, and the migration runs again from the start.
func (s *DB) migrateOutsideTx(ctx context.Context, v int, name, body string) error {
	if s.d.MigrationSessionLock == "" {
		return errors.New("a migration outside a transaction needs the dialect's session lock")
	}
	for attempt := 1; ; attempt++ {
		err := s.migrateOutsideTxOnce(ctx, v, name, body)
		if err == nil || s.d.Retryable == nil || !s.d.Retryable(err) || attempt == 10 {
			return err
		}
		s.log.Warn("store: migration aborted (a deadlock with a process of an older version waiting for the migration lock?); running it again", "migration", name, "err", err)
		if err := sleepCtx(ctx, time.Duration(attempt)*200*time.Millisecond); err != nil {
			return err
		}
	}
}

func (s *DB) migrateOutsideTxOnce(ctx context.Context, v int, name, body string) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := s.untilLocked(ctx, name, func() (bool, error) { return tryLock(ctx, c, s.d.MigrationSessionLock) }); err != nil {
		return err
	}
	defer func() {
		// A connection whose unlock failed may still hold the lock: it
		// must not go back to the pool.
		if _, err := c.ExecContext(context.Background(), s.d.MigrationSessionUnlock); err != nil {
			c.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if done, err := s.applied(ctx, c, v); err != nil || done {
		return err
	}
	s.log.Info("store: migrating outside a transaction (an index built CONCURRENTLY waits for every older transaction in the database)", "migration", name)
	if err := runStatements(ctx, c, body); err != nil {
		return err
	}
	return s.markApplied(ctx, c, v)
}

// execer is a transaction or a connection.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tryLock runs lock, a query reporting whether it took the migration lock
// ("" when the dialect needs none: it has the lock).
func tryLock(ctx context.Context, q execer, lock string) (bool, error) {
	if lock == "" {
		return true, nil
	}
	var ok bool
	err := q.QueryRowContext(ctx, lock).Scan(&ok)
	return ok, err
}

func (s *DB) applied(ctx context.Context, q execer, v int) (bool, error) {
	if _, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return false, err
	}
	var n int
	err := q.QueryRowContext(ctx, s.rebind(`SELECT count(*) FROM schema_migrations WHERE version = ?`), v).Scan(&n)
	return n > 0, err
}

func (s *DB) markApplied(ctx context.Context, q execer, v int) error {
	_, err := q.ExecContext(ctx, s.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), v, time.Now().UnixMilli())
	return err
}

func runStatements(ctx context.Context, q execer, body string) error {
	for _, stmt := range splitStatements(body) {
		if strings.TrimSpace(stripComments(stmt)) == "" {
			continue
		}
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// splitStatements splits a migration at its semicolons, except those in
// a -- comment, a '…' literal or a $$-quoted body (a PostgreSQL function's).
func splitStatements(body string) []string {
	var stmts []string
	start := 0
	for i := 0; i < len(body); i++ {
		switch {
		case strings.HasPrefix(body[i:], "--"):
			if n := strings.IndexByte(body[i:], '\n'); n >= 0 {
				i += n
			} else {
				i = len(body)
			}
		case body[i] == '\'':
			if n := strings.IndexByte(body[i+1:], '\''); n >= 0 { // '' inside is two literals back to back: the same split
				i += n + 1
			} else {
				i = len(body)
			}
		case strings.HasPrefix(body[i:], "$$"):
			if n := strings.Index(body[i+2:], "$$"); n >= 0 {
				i += n + 3
			} else {
				i = len(body)
			}
		case body[i] == ';':
			stmts = append(stmts, body[start:i])
			start = i + 1
		}
	}
	return append(stmts, body[start:])
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs the aggregate methods on one querier; inTx is set when that
// querier is a transaction the caller controls.
type conn struct {
	s    *DB
	q    querier
	inTx bool
}

func (c *conn) rebind(query string) string {
	if !c.s.d.Dollar {
		return query
	}
	if v, ok := c.s.qcache.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	out := b.String()
	c.s.qcache.Store(query, out)
	return out
}

func (c *conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.rebind(query), args...)
}

func (c *conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.rebind(query), args...)
}

// stmt returns query prepared once per database (and per connection, by
// database/sql), bound to the transaction when c is one; ok is false when
// the caller should run the query unprepared. Parsing a statement costs
// SQLite more than running a typical one; PostgreSQL's driver caches
// prepared statements itself.
func (c *conn) stmt(ctx context.Context, query string) (st *sql.Stmt, ok bool) {
	if c.s.d.Dollar {
		return nil, false
	}
	v, ok := c.s.stmts.Load(query)
	if !ok {
		if _, inTx := c.q.(*sql.Tx); inTx {
			// Preparing takes a connection of its own: never wait for one
			// while holding a transaction's. Prepare in the background.
			if _, busy := c.s.preparing.LoadOrStore(query, true); !busy {
				c.s.prepMu.Lock()
				if !c.s.closing {
					c.s.prepWG.Add(1)
					go func() {
						defer c.s.prepWG.Done()
						defer c.s.preparing.Delete(query)
						pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						c.s.prepare(pctx, query)
					}()
				}
				c.s.prepMu.Unlock()
			}
			return nil, false
		}
		if v = c.s.prepare(ctx, query); v == nil {
			return nil, false
		}
	}
	st = v.(*sql.Stmt)
	if tx, ok := c.q.(*sql.Tx); ok {
		st = tx.StmtContext(ctx, st)
	}
	return st, true
}

// prepare prepares query and caches it (nil when it cannot be prepared).
func (s *DB) prepare(ctx context.Context, query string) any {
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if old, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return old
	}
	return st
}

// execPrepared is exec through a prepared statement when there is one.
func (c *conn) execPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := c.stmt(ctx, query); ok {
		return st.ExecContext(ctx, args...)
	}
	return c.exec(ctx, query, args...)
}

// queryPrepared is query through a prepared statement when there is one.
func (c *conn) queryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := c.stmt(ctx, query); ok {
		return st.QueryContext(ctx, args...)
	}
	return c.query(ctx, query, args...)
}

// row runs a single-row query; its text is a constant of this package, so
// it is prepared once (stmt).
func (c *conn) row(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := c.stmt(ctx, query); ok {
		return st.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, c.rebind(query), args...)
}

const maxRetries = 20

// write runs fn in a read-write transaction, retrying on serialization
// failures. Inside an InTx it simply runs fn on the caller's transaction.
func (s *DB) write(ctx context.Context, fn func(c *conn) error) error {
	if s.d.SerializeWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	var err error
	for attempt := 0; attempt < maxRetries; attempt++ {
		err = s.tryTx(ctx, fn)
		if err == nil || !s.d.Retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 3 * time.Millisecond)
	}
	return fmt.Errorf("store: giving up after %d retries: %w", maxRetries, err)
}

func (s *DB) tryTx(ctx context.Context, fn func(c *conn) error) (err error) {
	tx, err := s.db.BeginTx(ctx, s.d.TxOptions)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(&conn{s: s, q: tx, inTx: true}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// InTx runs fn in one transaction.
func (s *DB) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.write(ctx, func(c *conn) error { return fn(c) })
}

// Ping checks the database.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
func (s *DB) Close() error {
	// No statement is being prepared in the background (it would hold a
	// connection, closed only when released: SQLite's files would outlive
	// Close), and the prepared ones go first.
	s.prepMu.Lock()
	s.closing = true
	s.prepMu.Unlock()
	s.prepWG.Wait()
	s.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
	return s.db.Close()
}

// sentMailKept is how long mail whose delivery ended stays in the outbox;
// keptMailKept how long any other does (kept for `writ outbox` to show
// without SMTP, or never delivered: no sender ran, or SMTP was turned off
// meanwhile), as long as the longest a code or temporary password in it
// can be used (7 days, a temporary password's life in Cognito).
const (
	sentMailKept = 24 * time.Hour
	keptMailKept = 7 * 24 * time.Hour
)

// DeleteExpired removes expired rows.
func (s *DB) DeleteExpired(ctx context.Context, now time.Time) error {
	ms := now.UnixMilli()
	return s.write(ctx, func(c *conn) error {
		for _, q := range []string{
			`DELETE FROM sessions WHERE expires_at <= ?`,
			`DELETE FROM one_time WHERE expires_at <= ?`,
			`DELETE FROM counters WHERE window_end <= ?`,
			`DELETE FROM codes WHERE expires_at <= ?`,
			`DELETE FROM refresh_tokens WHERE expires_at <= ?`,
			`DELETE FROM signing_keys WHERE publish_until > 0 AND publish_until <= ?`,
		} {
			if _, err := c.exec(ctx, q, ms); err != nil {
				return fmt.Errorf("store: delete expired: %w", err)
			}
		}
		// Delivered mail (its body already erased) is kept a day, for
		// `writ outbox` to show what was sent and what was given up.
		if _, err := c.exec(ctx, `DELETE FROM outbox WHERE deliver = 1 AND done_at > 0 AND done_at <= ?`, ms-int64(sentMailKept/time.Millisecond)); err != nil {
			return fmt.Errorf("store: delete expired: %w", err)
		}
		if _, err := c.exec(ctx, `DELETE FROM outbox WHERE done_at = 0 AND created_at <= ?`, ms-int64(keptMailKept/time.Millisecond)); err != nil {
			return fmt.Errorf("store: delete expired: %w", err)
		}
		return nil
	})
}

// --- value helpers ----------------------------------------------------------

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func fromJSON[T any](s string) T {
	var v T
	if s != "" {
		_ = json.Unmarshal([]byte(s), &v)
	}
	return v
}

func notFound(what string, key ...string) error {
	return fmt.Errorf("store: %s %s: %w", what, strings.Join(key, "/"), store.ErrNotFound)
}

func (c *conn) conflictOr(err error, what string) error {
	if err != nil && c.s.d.IsUnique(err) {
		return fmt.Errorf("store: %s: %w", what, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// run executes fn on c when it is already a transaction, else in a new one.
func (c *conn) run(ctx context.Context, fn func(c *conn) error) error {
	if c.inTx {
		return fn(c)
	}
	return c.s.write(ctx, fn)
}

// rows1 maps at most one row, reporting sql.ErrNoRows.
func scanErr(err error, what string, key ...string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(what, key...)
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

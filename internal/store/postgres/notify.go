package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/sqlstore"
)

// Store is the PostgreSQL store: the shared SQL code path plus
// LISTEN/NOTIFY, so that replicas hear of changes at once.
type Store struct {
	*sqlstore.DB
	cfg *pgx.ConnConfig // with its connect timeout
}

var _ store.Notifier = (*Store)(nil)

// Notify implements store.Notifier with pg_notify.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	_, err := s.SQL().ExecContext(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	return err
}

// Listen implements store.Notifier on a dedicated connection.
func (s *Store) Listen(ctx context.Context, channel string, fn func(string)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, s.cfg)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize())
		}
		for err == nil {
			var n *pgconn.Notification
			if n, err = conn.WaitForNotification(ctx); err == nil {
				backoff = 100 * time.Millisecond
				fn(n.Payload)
			}
		}
		if conn != nil {
			conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		slog.Debug("store: LISTEN connection lost; reconnecting", "channel", channel, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

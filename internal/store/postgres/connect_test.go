package postgres_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/store/postgres"
)

// silentServer accepts connections and never answers, as a PostgreSQL
// endpoint behind a stuck proxy or firewall does.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Open on a server that accepts the connection and never answers fails
// within the connect timeout (Options, else the DSN's connect_timeout,
// else 10 s) with an error naming the server, logging meanwhile that it
// waits; it does not hang.
func TestOpenSilentServerTimesOut(t *testing.T) {
	addr := silentServer(t)
	for _, c := range []struct {
		name  string
		query string
		opt   time.Duration
		bound time.Duration
	}{
		{"option", "", 3 * time.Second, 3 * time.Second},
		{"dsn", "&connect_timeout=3", 0, 3 * time.Second},
		{"default", "", 0, postgres.DefaultConnectTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			dsn := "postgres://writ:secret-pw@" + addr + "/writ?sslmode=disable" + c.query
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				st, err := postgres.Open(context.Background(), dsn, postgres.Options{ConnectTimeout: c.opt, Log: slog.New(slog.NewTextHandler(&logs, nil))})
				if err == nil {
					st.Close()
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(c.bound + 10*time.Second):
				t.Fatalf("Open still waits after %v", time.Since(start))
			}
			took := time.Since(start)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			if took < c.bound-time.Second || took > c.bound+5*time.Second {
				t.Errorf("Open failed after %v, want about %v", took, c.bound)
			}
			if !strings.Contains(err.Error(), "cannot connect to "+addr) || strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("error: %v", err)
			}
			if !strings.Contains(logs.String(), "waiting for the store") || strings.Contains(logs.String(), "secret-pw") {
				t.Errorf("log: %s", logs.String())
			}
		})
	}
}

// Package apptest starts a real writ (app.App) from the reference
// configuration for protocol tests: loopback listeners on free ports, a
// temporary data dir, cheap password hashing and a controllable clock.
package apptest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/examples"
	"github.com/writ-id/writ/internal/app"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Env is a running writ for a test.
type Env struct {
	App   *app.App
	Cfg   *config.Config
	Clock *Clock
	Dir   string
	Log   *LogBuffer
	stop  func()
}

// Option changes the configuration before start.
type Option func(*config.Config)

// ClassicFlow enables the basic (classic) flow on every identity pool
// (GetOpenIdToken, then AssumeRoleWithWebIdentity), off by default.
func ClassicFlow(c *config.Config) {
	for i := range c.IdentityPools {
		c.IdentityPools[i].AllowClassicFlow = true
	}
}

// CheapArgon2 keeps tests fast; the parameters are stored in each hash, so
// verification is exercised exactly as in production.
var CheapArgon2 = userpool.Argon2Params{Memory: 256, Time: 1, Threads: 1}

// Reference parses examples/writ.yaml as if it stood in dir.
func Reference(t testing.TB, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(examples.ReferenceConfig, filepath.Join(dir, "writ.yaml"))
	if err != nil {
		t.Fatalf("reference config: %v", err)
	}
	return cfg
}

// Start runs writ from the reference configuration with the given options.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	return StartArgon2(t, CheapArgon2, opts...)
}

// StartArgon2 is Start with the given password-hashing cost.
func StartArgon2(t testing.TB, argon userpool.Argon2Params, opts ...Option) *Env {
	t.Helper()
	return StartDir(t, t.TempDir(), argon, opts...)
}

// StartDir is StartArgon2 in dir (its data under dir/data), so that a test
// can stop writ (Env.Stop) and start it again on the same data.
func StartDir(t testing.TB, dir string, argon userpool.Argon2Params, opts ...Option) *Env {
	t.Helper()
	cfg := Reference(t, dir)
	cfg.DataDir = filepath.Join(dir, "data")
	for _, l := range []*config.Listener{cfg.Serve.IDP, cfg.Serve.Identity, cfg.Serve.Objects, cfg.Serve.Gateway, cfg.Serve.Ops} {
		if l != nil {
			l.Listen, l.PublicURL = "127.0.0.1:0", ""
		}
	}
	// The idp's address must be known before start, because authorizers
	// name its issuer: take a free port now.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg.Serve.IDP.Listen, cfg.Serve.IDP.PublicURL = addr, "http://"+addr
	cfg.RelocateIDP("http://127.0.0.1:8400", "http://"+addr)
	for _, o := range opts {
		o(cfg)
	}
	return StartConfig(t, cfg, dir, argon)
}

// StartConfig runs writ from cfg.
func StartConfig(t testing.TB, cfg *config.Config, dir string, argon userpool.Argon2Params) *Env {
	t.Helper()
	clock := NewClock(time.Now())
	logs := &LogBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	a, err := app.New(ctx, cfg, app.Options{Log: log, Argon2: argon, Now: clock.Now})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	done := make(chan error, 1)
	sctx, cancel := context.WithCancel(ctx)
	go func() { done <- a.Serve(sctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &Env{App: a, Cfg: cfg, Clock: clock, Dir: dir, Log: logs, stop: stop}
}

// Stop stops writ (as at the end of the test) and waits until it has.
func (e *Env) Stop() { e.stop() }

// AuditEvents flushes the audit writer and returns the events of the
// trail that f matches, failing the test when either fails.
func (e *Env) AuditEvents(t testing.TB, f store.AuditFilter) []store.AuditEvent {
	t.Helper()
	ctx := context.Background()
	if err := e.App.Core.Audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := e.App.Core.Store.ListAudit(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// LogBuffer collects log output.
type LogBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	return len(p), nil
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if os.Getenv("WRIT_TEST_LOG") != "" {
		w.t.Logf("%s", p)
	}
	return len(p), nil
}

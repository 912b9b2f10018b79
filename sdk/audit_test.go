package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writ-id/writ/sdk"
)

// fakeWrit is a token endpoint and an ingest endpoint.
type fakeWrit struct {
	*httptest.Server
	mu      sync.Mutex
	tokens  int
	batches [][]map[string]any
	// answer returns the ingest status for the n-th post (from 1).
	answer  func(n int) int
	arrived chan struct{}
	release chan struct{}
}

func newFakeWrit(t *testing.T) *fakeWrit {
	f := &fakeWrit{answer: func(int) int { return 200 }}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/token":
			r.ParseForm()
			if id, secret, _ := r.BasicAuth(); id != "orders-service" || secret != "s3cret" || r.Form.Get("grant_type") != "client_credentials" ||
				r.Form.Get("scope") != sdk.AuditScope {
				http.Error(w, `{"error":"invalid_client"}`, 401)
				return
			}
			f.mu.Lock()
			f.tokens++
			n := f.tokens
			f.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + string(rune('0'+n)), "expires_in": 3600, "token_type": "Bearer"})
		case "/audit/events":
			if f.arrived != nil {
				f.arrived <- struct{}{}
				<-f.release
			}
			var evs []map[string]any
			if err := json.NewDecoder(r.Body).Decode(&evs); err != nil || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") {
				http.Error(w, `{"error":"invalid_request"}`, 400)
				return
			}
			f.mu.Lock()
			f.batches = append(f.batches, evs)
			status := f.answer(len(f.batches))
			f.mu.Unlock()
			w.WriteHeader(status)
			w.Write([]byte(`{"error":"invalid_request","error_description":"events[0].outcome: must be allow, deny or error"}`))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeWrit) client(t *testing.T, cfg sdk.AuditConfig) *sdk.AuditClient {
	cfg.URL, cfg.Component = f.URL+"/audit/events", "orders"
	cfg.Credentials = sdk.ClientCredentials{TokenURL: f.URL + "/oauth2/token", ClientID: "orders-service", ClientSecret: "s3cret"}
	c, err := sdk.NewAuditClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuditClientBatchesAndFillsFromContext(t *testing.T) {
	f := newFakeWrit(t)
	c := f.client(t, sdk.AuditConfig{BatchSize: 2, FlushInterval: time.Hour})
	ctx := sdk.WithRequest(context.Background(), "req-9", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx = sdk.NewContext(ctx, &sdk.Identity{Subject: "alice-sub", ActorChain: []string{"orders-service"}})
	for i := 0; i < 3; i++ {
		c.Record(ctx, sdk.AuditEvent{Action: "orders:Get", Outcome: sdk.AuditAllow})
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	if len(f.batches) != 2 || len(f.batches[0]) != 2 || len(f.batches[1]) != 1 || f.tokens != 1 {
		t.Errorf("batches %v, %d token requests", f.batches, f.tokens)
	}
	e := f.batches[0][0]
	if e["component"] != "orders" || e["request_id"] != "req-9" || e["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || e["sub"] != "alice-sub" ||
		e["actor_chain"].([]any)[0] != "orders-service" || e["time"] != nil {
		t.Errorf("event %v", e)
	}
	f.mu.Unlock()
	if err := c.Close(ctx); err != nil || c.Dropped() != 0 {
		t.Fatalf("close: %v, dropped %d", err, c.Dropped())
	}
}

func TestAuditClientKeepsWhatItCannotDeliverInTheLog(t *testing.T) {
	f := newFakeWrit(t)
	f.answer = func(n int) int {
		switch n {
		case 1:
			return http.StatusUnauthorized // a stale token: fetch another, send again
		case 2:
			return 200
		}
		return http.StatusBadRequest // refused for good: logged, not retried
	}
	var logs bytes.Buffer
	var lmu sync.Mutex
	log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) { lmu.Lock(); defer lmu.Unlock(); return logs.Write(p) }), nil))
	c := f.client(t, sdk.AuditConfig{Log: log})
	ctx := context.Background()
	c.Record(ctx, sdk.AuditEvent{Action: "first", Outcome: sdk.AuditAllow})
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("after a 401 the client gets a new token and sends again: %v", err)
	}
	c.Record(ctx, sdk.AuditEvent{Action: "refused", Outcome: sdk.AuditAllow})
	if err := c.Flush(ctx); err == nil || !strings.Contains(err.Error(), "events[0].outcome") {
		t.Errorf("flush of a refused batch: %v", err)
	}
	c.Close(ctx)
	c.Record(ctx, sdk.AuditEvent{Action: "late", Outcome: sdk.AuditAllow})
	f.mu.Lock()
	if f.tokens != 2 || len(f.batches) != 3 {
		t.Errorf("%d tokens, %d posts", f.tokens, len(f.batches))
	}
	f.mu.Unlock()
	lmu.Lock()
	defer lmu.Unlock()
	if c.Dropped() != 2 || !strings.Contains(logs.String(), `"action":"refused"`) || !strings.Contains(logs.String(), `"action":"late"`) ||
		strings.Contains(logs.String(), `"action":"first"`) {
		t.Errorf("dropped %d; log:\n%s", c.Dropped(), logs.String())
	}
}

func TestAuditClientQueueIsBounded(t *testing.T) {
	f := newFakeWrit(t)
	f.arrived, f.release = make(chan struct{}), make(chan struct{})
	var logs bytes.Buffer
	var lmu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { lmu.Lock(); defer lmu.Unlock(); return logs.Write(p) }), nil))
	c := f.client(t, sdk.AuditConfig{QueueSize: 1, BatchSize: 1, Log: log})
	ctx := context.Background()
	c.Record(ctx, sdk.AuditEvent{Action: "in-flight", Outcome: sdk.AuditAllow})
	<-f.arrived // the first batch is being sent
	c.Record(ctx, sdk.AuditEvent{Action: "queued", Outcome: sdk.AuditAllow})
	start := time.Now()
	c.Record(ctx, sdk.AuditEvent{Action: "overflow", Outcome: sdk.AuditAllow}) // does not block
	if time.Since(start) > 100*time.Millisecond {
		t.Errorf("Record blocked on a full queue")
	}
	go func() {
		for range f.arrived {
			f.release <- struct{}{}
		}
	}()
	f.release <- struct{}{}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(f.arrived)
	lmu.Lock()
	defer lmu.Unlock()
	if c.Dropped() != 1 || !strings.Contains(logs.String(), "action=overflow") || strings.Contains(logs.String(), "action=queued") {
		t.Errorf("dropped %d; log:\n%s", c.Dropped(), logs.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) != 2 {
		t.Errorf("posts: %v", f.batches)
	}
}

func TestLogAuditSink(t *testing.T) {
	var buf bytes.Buffer
	sink := sdk.LogAuditSink{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Component: "orders"}
	ctx := sdk.NewContext(sdk.WithRequest(context.Background(), "req-1", ""), &sdk.Identity{Subject: "alice-sub"})
	sink.Record(ctx, sdk.AuditEvent{Action: "orders:Delete", Outcome: sdk.AuditDeny, Reason: "not the owner"})
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["msg"] != "audit" || rec["component"] != "orders" || rec["action"] != "orders:Delete" || rec["outcome"] != "deny" ||
		rec["request_id"] != "req-1" || rec["sub"] != "alice-sub" || rec["reason"] != "not the owner" {
		t.Errorf("log record %v", rec)
	}
}

func TestNewAuditClientChecksItsConfig(t *testing.T) {
	for _, cfg := range []sdk.AuditConfig{
		{URL: "127.0.0.1:8401/audit/events", Component: "orders", Credentials: sdk.ClientCredentials{TokenURL: "http://x/oauth2/token", ClientID: "c"}},
		{URL: "http://127.0.0.1:8401/audit/events", Credentials: sdk.ClientCredentials{TokenURL: "http://x/oauth2/token", ClientID: "c"}},
		{URL: "http://127.0.0.1:8401/audit/events", Component: "orders"},
	} {
		if _, err := sdk.NewAuditClient(cfg); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

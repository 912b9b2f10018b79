package audit_test

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/benchutil"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
	"github.com/writ-id/writ/internal/store/sqlite"
)

// BenchmarkAuditAppend measures audit events recorded and stored per
// second through a Writer (hash chain, group commit), as a gateway records
// one per request: 8 concurrent recorders, each event a typical gateway
// allow. ns/op is the cost of one event until it is durable (the benchmark
// flushes before it stops the timer). "one-user": one subject, request
// ids the gateway made (time-ordered); "many-users": 1000 subjects taking
// turns, and request ids that callers sent (random, as a tracing client's
// X-Request-Id), which land all over the indexes that find them.
func BenchmarkAuditAppend(b *testing.B) {
	backends := map[string]func(testing.TB) store.Store{"sqlite": sqlite.OpenTest}
	if os.Getenv("WRIT_TEST_POSTGRES") != "" {
		backends["postgres"] = postgres.OpenTest
	}
	subs := make([]string, 1000)
	for i := range subs {
		subs[i] = benchutil.UUID()
	}
	for name, open := range backends {
		for _, many := range []bool{false, true} {
			b.Run(name+map[bool]string{false: "/one-user", true: "/many-users"}[many], func(b *testing.B) {
				benchmarkAppend(b, open(b), subs, many)
			})
		}
	}
}

func benchmarkAppend(b *testing.B, st store.Store, subs []string, many bool) {
	w := audit.NewWriter(st, audit.NewSigner([]byte("0123456789abcdef0123456789abcdef")), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	var n atomic.Int64
	start, cpu0 := time.Now(), benchutil.CPUTime()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sub, rid := subs[0], audit.NewRequestID()
			if many {
				sub, rid = subs[n.Add(1)%int64(len(subs))], benchutil.UUID()
			}
			w.Record(ctx, audit.Event{Component: "gateway", Action: "GET /orders/{id}", Outcome: audit.Allow,
				Reason: "token valid; scopes ok", PoolID: "us-east-1_WritDemo1", Sub: sub,
				Username: "alice", ClientID: "demo-web", Resource: "/orders/1", RequestID: rid,
				TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SourceIP: "127.0.0.1"})
		}
	})
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	if cpu := benchutil.CPUTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/event")
	}
}

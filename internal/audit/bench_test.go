package audit_test

import (
	"context"
	"log/slog"
	"os"
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
// allow with a fresh request id. ns/op is the cost of one event until it
// is durable (the benchmark flushes before it stops the timer).
func BenchmarkAuditAppend(b *testing.B) {
	backends := map[string]func(testing.TB) store.Store{"sqlite": sqlite.OpenTest}
	if os.Getenv("WRIT_TEST_POSTGRES") != "" {
		backends["postgres"] = postgres.OpenTest
	}
	for name, open := range backends {
		b.Run(name, func(b *testing.B) {
			st := open(b)
			w := audit.NewWriter(st, audit.NewSigner([]byte("0123456789abcdef0123456789abcdef")), slog.New(slog.DiscardHandler))
			ctx := context.Background()
			start, cpu0 := time.Now(), benchutil.CPUTime()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w.Record(ctx, audit.Event{Component: "gateway", Action: "GET /orders/{id}", Outcome: audit.Allow,
						Reason: "token valid; scopes ok", PoolID: "us-east-1_WritDemo1", Sub: "3f1f0c5d-7b21-4a8e-9a51-2a7c5e0e6f43",
						Username: "alice", ClientID: "demo-web", Resource: "/orders/1", RequestID: audit.NewRequestID(),
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
		})
	}
}

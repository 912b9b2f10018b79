package apptest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TakeTurns benchmarks several targets against each other on a shared,
// noisy machine: the targets take turns in blocks of block operations, each
// block run by clients goroutines calling op(target), until b.N operations
// have run in all — so a burst of load elsewhere slows them alike. It
// reports ops/s-<name> and cpu-µs/op-<name> (the whole process's CPU: client
// and servers) per target and returns the rates (ops/s) in names' order.
// settle, when given, runs at the end of each block inside its timing: the
// place to wait for a target's background work (an audit flush) so that it
// is not charged to the next target's turn.
func TakeTurns(b *testing.B, names []string, clients, block int, op func(target int) error, settle ...func(target int)) []float64 {
	b.Helper()
	elapsed := make([]time.Duration, len(names))
	cpu := make([]time.Duration, len(names))
	n := make([]int, len(names))
	for done := 0; done < b.N; done += block * len(names) {
		for i := range names {
			var left atomic.Int64
			left.Store(int64(block))
			var wg sync.WaitGroup
			t0, c0 := time.Now(), CPUTime()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						if err := op(i); err != nil {
							b.Errorf("%s: %v", names[i], err)
							return
						}
					}
				}()
			}
			wg.Wait()
			for _, s := range settle {
				s(i)
			}
			elapsed[i] += time.Since(t0)
			cpu[i] += CPUTime() - c0
			n[i] += block
		}
	}
	rates := make([]float64, len(names))
	for i, name := range names {
		rates[i] = float64(n[i]) / elapsed[i].Seconds()
		b.ReportMetric(rates[i], "ops/s-"+name)
		if cpu[i] > 0 {
			b.ReportMetric(float64(cpu[i].Microseconds())/float64(n[i]), "cpu-µs/op-"+name)
		}
	}
	return rates
}

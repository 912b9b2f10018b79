// Package benchutil measures several targets against each other on a
// shared, noisy machine, for Go benchmarks and `writ bench`.
package benchutil

import (
	"sync"
	"sync/atomic"
	"time"
)

// Result is one target's share of a TakeTurns run.
type Result struct {
	Ops     int
	Elapsed time.Duration
	CPU     time.Duration // the whole process's CPU during its turns (0 where not measured)
}

// Rate is operations per second.
func (r Result) Rate() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// CPUPerOp is the process's CPU time per operation, in microseconds.
func (r Result) CPUPerOp() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.CPU.Microseconds()) / float64(r.Ops)
}

// TakeTurns runs op against n targets in turn, in blocks of block
// operations, each block by clients goroutines calling op(target), until
// total operations have run in all (or an op fails) — so a burst of load
// elsewhere slows every target alike and their ratios hold. settle, when
// given, runs at the end of each block inside its timing: the place to
// wait for a target's background work (an audit flush) so that it is not
// charged to the next target's turn.
func TakeTurns(n, clients, block, total int, op func(target int) error, settle func(target int)) ([]Result, error) {
	res := make([]Result, n)
	var failed atomic.Value
	for done := 0; done < total; done += block * n {
		for i := range n {
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
							failed.CompareAndSwap(nil, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if settle != nil {
				settle(i)
			}
			res[i].Elapsed += time.Since(t0)
			res[i].CPU += CPUTime() - c0
			res[i].Ops += block
			if err, _ := failed.Load().(error); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

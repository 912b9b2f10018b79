// Package benchutil measures several targets against each other on a
// shared, noisy machine, for Go benchmarks and `writ bench`.
package benchutil

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one target's share of a TakeTurns run: its totals, and each
// of its turns.
type Result struct {
	Ops     int
	Elapsed time.Duration
	CPU     time.Duration // the whole process's CPU during its turns (0 where not measured)
	Turns   []Result      // one per turn, in order (their Turns empty)
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
			turn := Result{Ops: block, Elapsed: time.Since(t0), CPU: CPUTime() - c0}
			res[i].Elapsed += turn.Elapsed
			res[i].CPU += turn.CPU
			res[i].Ops += block
			res[i].Turns = append(res[i].Turns, turn)
			if err, _ := failed.Load().(error); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// PairedMedian returns the median, over the turns a and b took one after
// the other (their k-th turns), of f(a's turn) / f(b's turn): a burst of
// load elsewhere that slows one pair of turns moves it less than it moves
// the ratio of the totals.
func PairedMedian(a, b Result, f func(Result) float64) float64 {
	n := min(len(a.Turns), len(b.Turns))
	if n == 0 {
		return 0
	}
	rs := make([]float64, n)
	for k := range n {
		rs[k] = f(a.Turns[k]) / f(b.Turns[k])
	}
	slices.Sort(rs)
	if n%2 == 1 {
		return rs[n/2]
	}
	return (rs[n/2-1] + rs[n/2]) / 2
}

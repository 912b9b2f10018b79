package benchutil

import (
	"math"
	"testing"
	"time"
)

func TestPairedMedian(t *testing.T) {
	turns := func(ms ...float64) Result {
		var r Result
		for _, m := range ms {
			r.Turns = append(r.Turns, Result{Ops: 100, Elapsed: time.Duration(m * float64(time.Millisecond))})
		}
		return r
	}
	rate := func(r Result) float64 { return r.Rate() }
	// Pairs 1, 1.25 and 4 (a burst slowed b's third turn): the median is
	// 1.25 where the totals' ratio is 2.
	if got := PairedMedian(turns(10, 10, 10), turns(10, 12.5, 40), rate); math.Abs(got-1.25) > 1e-9 {
		t.Errorf("odd: %v", got)
	}
	if got := PairedMedian(turns(10, 10), turns(20, 10), rate); got != 1.5 {
		t.Errorf("even: %v", got)
	}
	if got := PairedMedian(turns(), turns(10), rate); got != 0 {
		t.Errorf("none: %v", got)
	}
	res, err := TakeTurns(2, 2, 10, 40, func(int) error { return nil }, nil)
	if err != nil || len(res[0].Turns) != 2 || len(res[1].Turns) != 2 || res[0].Ops != 20 || res[1].Turns[1].Ops != 10 {
		t.Fatalf("turns: %+v %v", res, err)
	}
}

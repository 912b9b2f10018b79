package apptest

import (
	"testing"

	"github.com/writ-id/writ/internal/benchutil"
)

// TakeTurns is benchutil.TakeTurns for a benchmark: b.N operations in all,
// targets taking turns in blocks. It reports ops/s-<name> and
// cpu-µs/op-<name> (the whole process's CPU: client and servers) per target
// and returns the rates (ops/s) in names' order. settle, when given, runs
// at the end of each block inside its timing (benchutil.TakeTurns).
func TakeTurns(b *testing.B, names []string, clients, block int, op func(target int) error, settle ...func(target int)) []float64 {
	b.Helper()
	var s func(int)
	if len(settle) > 0 {
		s = settle[0]
	}
	res, err := benchutil.TakeTurns(len(names), clients, block, b.N, op, s)
	if err != nil {
		b.Fatal(err)
	}
	rates := make([]float64, len(names))
	for i, name := range names {
		rates[i] = res[i].Rate()
		b.ReportMetric(rates[i], "ops/s-"+name)
		if res[i].CPU > 0 {
			b.ReportMetric(res[i].CPUPerOp(), "cpu-µs/op-"+name)
		}
	}
	return rates
}

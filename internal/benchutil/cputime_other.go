//go:build !unix

package benchutil

import "time"

// CPUTime is not measured on this platform: benchmarks report no CPU.
func CPUTime() time.Duration { return 0 }

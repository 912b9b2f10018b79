//go:build unix

package benchutil

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time this process has used (user + system), for
// benchmarks that report CPU per operation.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

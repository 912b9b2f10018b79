//go:build !unix

package gateway_test

import "time"

// cpuTime is not measured here (no cpu-µs/op metric).
func cpuTime() time.Duration { return 0 }

//go:build !unix

package main

import "time"

// cpuTime is not measured here: bench reports 0 µs of CPU per request.
func cpuTime() time.Duration { return 0 }

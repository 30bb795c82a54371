package daemon

import (
	"os"
	"runtime"
)

// SetProcs sets GOMAXPROCS to n (at least 1) unless GOMAXPROCS is set in the environment, and
// returns the value in force. A process whose Go code is a few event loops runs best with no more
// Ps than loops: when a loop's goroutine wakes, the runtime starts a spinning thread for every
// idle P it sees, which finds nothing and sleeps again, a wasted context switch or two per
// wake-up (BENCHMARKS.md has the measurements behind the defaults).
func SetProcs(n int) int {
	if os.Getenv("GOMAXPROCS") != "" || n < 1 {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(n)
	return n
}

package daemon

import (
	"os"
	"runtime"
)

// SpareProcs raises GOMAXPROCS by loops, the number of goroutines that block in their own
// epoll_wait (gnet's event loops), unless GOMAXPROCS is set in the
// environment. Call it after those loops were sized (from GOMAXPROCS) and before they start.
//
// Why: a goroutine blocked in a system call keeps its P in the syscall state. When no P is idle,
// the runtime's sysmon takes such Ps back every 20 µs and starts a thread to run them, which finds
// nothing to do and sleeps again. With every loop parked in epoll_wait most of the time, that is a
// steady churn of nanosleep and futex calls, several per relayed connection. A spare P per loop keeps one idle, so sysmon leaves the loops alone; the
// extra Ps cost nothing while there is nothing to run, and Go code still has the original count
// of Ps whenever the loops wait.
func SpareProcs(loops int) int {
	return SetProcs(runtime.GOMAXPROCS(0) + loops)
}

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

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
// steady churn of nanosleep and futex calls (about 17 and 6 per relayed connection in the public
// proxy before this). A spare P per loop keeps one idle, so sysmon leaves the loops alone; the
// extra Ps cost nothing while there is nothing to run, and Go code still has the original count
// of Ps whenever the loops wait.
func SpareProcs(loops int) int {
	n := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || loops <= 0 {
		return n
	}
	runtime.GOMAXPROCS(n + loops)
	return n + loops
}

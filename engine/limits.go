package engine

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxSources caps the sources a rate limiter tracks in one window; past it, new sources are
// refused for the rest of the window (a flood of spoofed-looking sources must not grow memory).
const maxSources = 100000

// limiter counts new connections per source (netsrc: an IPv4 address or an IPv6 /64) in fixed
// windows. Each limiter has its own window,
// so the two listeners reset independently.
type limiter struct {
	limit  int
	window time.Duration
	mu     sync.Mutex
	start  time.Time
	counts map[netip.Prefix]int
}

func newLimiter(r RateLimit) *limiter {
	if r.Limit <= 0 || r.Window <= 0 {
		return nil
	}
	return &limiter{limit: r.Limit, window: r.Window, counts: map[netip.Prefix]int{}}
}

// allow counts one connection from src and reports whether it is within the limit. A nil limiter
// allows everything.
func (l *limiter) allow(src netip.Prefix, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window {
		l.start = now
		clear(l.counts)
	}
	n, ok := l.counts[src]
	if !ok && len(l.counts) >= maxSources {
		return false
	}
	if n >= l.limit {
		return false
	}
	l.counts[src] = n + 1
	return true
}

// raiseFDLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns it.
func raiseFDLimit() (uint64, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
			return 0, err
		}
	}
	return r.Cur, nil
}

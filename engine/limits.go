package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxSources caps the sources a rate limiter tracks in one window; past it, new sources are
// refused for the rest of the window (a flood of spoofed-looking sources must not grow memory).
const maxSources = 100000

// limiter counts new connections per source (netsrc: an IPv4 address or an IPv6 /64) in fixed
// windows. Each limiter has its own window, so the two listeners reset independently.
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

// phaseCap counts the connections in one phase (hello on the public listener, token on the
// internal one) per source and in all, and caps both, so that one source cannot take every slot
// of the phase and connections that never finish it cannot take every descriptor. The map has an
// entry only for a source holding a connection, so it never has more entries than the phase has
// connections and is empty once they are gone. It is shared by the loops; the lock is held for a
// map update only.
type phaseCap struct {
	// counting: the phase has a cap. Without one, enter and leave take no lock and connections
	// are admitted uncounted (capFree). A connection leaves the count only if it entered it, so
	// a reload may turn the caps on and off at any time (setLimits): connections admitted
	// uncounted before a cap came on do not count toward it while they finish the phase.
	counting atomic.Bool

	mu        sync.Mutex
	perSource int // 0: no per-source cap
	total     int // 0: no total cap (the hello phase keeps its own total in Engine.helloConns)
	all       int
	open      map[netip.Prefix]int
}

// capHit is how enter admitted or refused a connection.
type capHit uint8

const (
	capOK     capHit = iota // admitted and counted: leave must follow
	capTotal                // refused: the phase is full
	capSource               // refused: the source holds its share of the phase
	capFree                 // admitted uncounted (the phase has no cap): no leave
)

func newPhaseCap(perSource, total int) *phaseCap {
	p := &phaseCap{open: map[netip.Prefix]int{}}
	p.setLimits(perSource, total)
	return p
}

// refused reports whether h refuses the connection.
func (h capHit) refused() bool { return h == capTotal || h == capSource }

// setLimits changes the caps (0 turns one off). Connections already in the phase stay.
func (p *phaseCap) setLimits(perSource, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.perSource, p.total = perSource, total
	p.counting.Store(perSource > 0 || total > 0)
}

// enter counts a connection from src into the phase, or reports the cap that refuses it. Every
// capOK must be matched by one leave with the same src; capFree by none.
func (p *phaseCap) enter(src netip.Prefix) capHit {
	if !p.counting.Load() {
		return capFree
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total > 0 && p.all >= p.total {
		return capTotal
	}
	n := p.open[src]
	if p.perSource > 0 && n >= p.perSource {
		return capSource
	}
	p.open[src] = n + 1 // counted whatever the cap, which a reload may change
	p.all++
	return capOK
}

// leave uncounts a connection enter admitted with capOK.
func (p *phaseCap) leave(src netip.Prefix) {
	p.mu.Lock()
	p.all--
	if n := p.open[src] - 1; n > 0 {
		p.open[src] = n
	} else {
		delete(p.open, src)
	}
	p.mu.Unlock()
}

// counts returns the connections counted in the phase and the sources holding them.
func (p *phaseCap) counts() (conns, sources int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all, len(p.open)
}

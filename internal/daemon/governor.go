package daemon

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Governor moves GOMAXPROCS between two sizes with the process's own CPU use: Quiet while the
// process uses little CPU, Busy once it uses more.
//
// Why: a goroutine blocked in a system call (gnet's event loops park in epoll_wait) keeps its P,
// and the runtime's sysmon takes that P back only after 10 ms when another P is idle. Each time
// such a loop wakes from a wait that long, sysmon is woken from its deep sleep and restarts at
// 20 µs ticks: 20 to 50 wake-ups of its own per quiet-to-active transition (49 per client of
// the seed's stress test in the public proxy; bench/cmd/parkcost shows it with no gnet at all). A proxy that sees a client every few tens of milliseconds pays
// that for every client. With no idle P (GOMAXPROCS equal to the loops that block), sysmon takes
// a blocked loop's P back at its next tick and sleeps again. Under load the other way round
// wins: with a spare P per blocking loop, a goroutine the runtime poller wakes runs at once
// instead of after sysmon has taken a blocked loop's P, and sysmon does not do that every 20 µs
// (without the spare Ps the public proxy made about 17 nanosleep and 6 futex calls per client).
// The governor gives each regime its size.
//
// At rest it reads nothing: once the quiet size has used less than Rest for Calm windows in a
// row, the governor stops its ticker and waits for Wake, which the public proxy calls on every
// connection it accepts. Its window's timer fires while the only P is held by a gnet loop
// blocked in epoll_wait, so each reading cost sysmon's hand-off of that P: about half of an idle
// public proxy's context switches (30 a second with the ticker, 15 without).
type Governor struct {
	Quiet, Busy int           // GOMAXPROCS in each regime
	Every       time.Duration // how often CPU use is read (the window)
	Up          float64       // CPU use, in cores over one window, at or above which it goes Busy
	Down        float64       // CPU use below which, for Calm windows in a row, it goes Quiet
	Calm        int
	Rest        float64 // CPU use below which, for Calm quiet windows in a row, it waits for Wake (0: never)

	stop    chan struct{}
	done    chan struct{}
	wake    chan struct{} // one pending Wake, for a resting governor
	once    sync.Once
	busy    atomic.Bool
	resting atomic.Bool
}

// Defaults of the governor's thresholds: Up 15% of one core, Down 8% for 4 windows of 250 ms.
// On two cores the public proxy uses 3-4% of a core for the seed's stress test (about 22
// clients a second) in the quiet size and 5-6% in the busy one, 19% for one client at a time
// back to back (BENCHMARKS.md, "Measurements behind the defaults"): the first stays quiet, the
// second goes busy, and neither flaps between the two.
//
// Rest is 1% of a core: an idle public proxy uses about 0.15%, the seed's stress test 3-4%.
const (
	governEvery = 250 * time.Millisecond
	governUp    = 0.15
	governDown  = 0.08
	governCalm  = 4
	governRest  = 0.01
)

// GovernProcs starts a Governor between quiet and busy Ps with the default thresholds, unless
// GOMAXPROCS is set in the environment or the two sizes are the same; then it sets busy (as
// SetProcs does) and returns nil. Stop the returned governor when the process stops.
func GovernProcs(quiet, busy int) *Governor {
	quiet, busy = max(1, quiet), max(1, busy)
	if os.Getenv("GOMAXPROCS") != "" || quiet == busy {
		SetProcs(busy)
		return nil
	}
	g := &Governor{Quiet: quiet, Busy: busy, Every: governEvery, Up: governUp, Down: governDown, Calm: governCalm, Rest: governRest}
	g.Start()
	return g
}

// Start sets Quiet and begins reading the process's CPU use every Every.
func (g *Governor) Start() {
	g.stop, g.done, g.wake = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	runtime.GOMAXPROCS(g.Quiet)
	go g.run()
}

// IsBusy reports whether the governor is in the busy regime.
func (g *Governor) IsBusy() bool { return g.busy.Load() }

// IsResting reports whether the governor waits for Wake, reading nothing.
func (g *Governor) IsResting() bool { return g.resting.Load() }

// State is the regime for /debug/stats: "busy", "quiet", or "resting" (quiet, and waiting for
// Wake).
func (g *Governor) State() string {
	switch {
	case g.IsBusy():
		return "busy"
	case g.IsResting():
		return "resting"
	}
	return "quiet"
}

// Wake tells a resting governor that work has arrived: it reads the CPU use again from the next
// window. It never blocks and costs one atomic load when the governor is not resting, so it is
// safe on every accepted connection; on a nil Governor it does nothing. Work that arrives while
// the governor is deciding to rest wakes it with the next connection.
func (g *Governor) Wake() {
	if g == nil || !g.resting.Load() {
		return
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Stop ends the governor and leaves GOMAXPROCS at Busy. It may be called more than once, on a
// nil Governor and on one never started.
func (g *Governor) Stop() {
	if g == nil || g.done == nil {
		return
	}
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

func (g *Governor) run() {
	defer close(g.done)
	defer runtime.GOMAXPROCS(g.Busy)
	t := time.NewTicker(g.Every)
	defer t.Stop()
	last, at := cpuTime(), time.Now()
	calm, still := 0, 0
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			cpu := cpuTime()
			use := float64(cpu-last) / float64(now.Sub(at))
			last, at = cpu, now
			switch busy := g.busy.Load(); {
			case !busy && use >= g.Up:
				g.set(true)
			case busy && use < g.Down:
				if calm++; calm >= g.Calm {
					calm = 0
					g.set(false)
				}
			default:
				calm = 0
			}
			if g.busy.Load() || use >= g.Rest {
				still = 0
				continue
			}
			if still++; still < g.Calm {
				continue
			}
			still = 0
			if !g.rest(t) {
				return
			}
			last, at = cpuTime(), time.Now()
		}
	}
}

// rest stops the ticker until Wake or Stop, and restarts it on Wake. It reports false on Stop.
func (g *Governor) rest(t *time.Ticker) bool {
	t.Stop()
	select {
	case <-g.wake: // a second Wake that came as the last rest ended
	default:
	}
	g.resting.Store(true)
	defer g.resting.Store(false)
	select {
	case <-g.stop:
		return false
	case <-g.wake:
		t.Reset(g.Every)
		return true
	}
}

func (g *Governor) set(busy bool) {
	n := g.Quiet
	if busy {
		n = g.Busy
	}
	runtime.GOMAXPROCS(n)
	g.busy.Store(busy)
}

// cpuTime is the process's user and system CPU time. getrusage does not enter the runtime's
// syscall state (the syscall package makes it a raw call), so reading it wakes nothing.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package daemon

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond every few milliseconds for at most limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// spinCore starts a goroutine that uses a whole core until the returned function stops it (and
// waits for it to end).
func spinCore() (stop func()) {
	var spin atomic.Bool
	spin.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; spin.Load(); n++ {
			if n%(1<<20) == 0 {
				runtime.Gosched()
			}
		}
	}()
	return func() {
		spin.Store(false)
		<-done
	}
}

func TestGovernorFollowsCPUUse(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })

	g := &Governor{Quiet: 1, Busy: 3, Every: 20 * time.Millisecond, Up: 0.5, Down: 0.2, Calm: 2}
	g.Start()
	defer g.Stop()
	if got := runtime.GOMAXPROCS(0); got != 1 || g.IsBusy() {
		t.Fatalf("after Start: GOMAXPROCS %d, busy %v; want 1, quiet", got, g.IsBusy())
	}

	// A goroutine that spins uses a whole core: the governor must go busy.
	stopSpin := spinCore()
	waitFor(t, 10*time.Second, "a spinning goroutine did not make the governor busy", func() bool {
		return g.IsBusy() && runtime.GOMAXPROCS(0) == 3
	})

	// Once it stops, the process is quiet again.
	stopSpin()
	waitFor(t, 10*time.Second, "the governor stayed busy with nothing running", func() bool {
		return !g.IsBusy() && runtime.GOMAXPROCS(0) == 1
	})

	g.Stop()
	g.Stop() // twice is fine
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("after Stop: GOMAXPROCS %d, want the busy size 3", got)
	}
}

func TestGovernProcsLeavesAnExplicitGOMAXPROCS(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })

	t.Setenv("GOMAXPROCS", "2")
	if g := GovernProcs(1, orig+5); g != nil {
		g.Stop()
		t.Fatal("GovernProcs started a governor although GOMAXPROCS is set in the environment")
	}
	if got := runtime.GOMAXPROCS(0); got != orig {
		t.Errorf("GOMAXPROCS %d, want %d unchanged", got, orig)
	}
	var g *Governor
	g.Stop()                              // what a caller defers when GovernProcs returned nil
	(&Governor{Quiet: 1, Busy: 2}).Stop() // never started: returns at once
}

func TestGovernProcsSameSizesIsSetProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })

	t.Setenv("GOMAXPROCS", "")
	if g := GovernProcs(2, 2); g != nil {
		g.Stop()
		t.Fatal("GovernProcs started a governor for two equal sizes")
	}
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS %d, want 2", got)
	}
}

// A quiet process rests: the governor stops reading its CPU use, so work that arrives without a
// Wake does not make it busy, and a Wake makes it read again and follow the work.
func TestGovernorRestsUntilWoken(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })

	var never *Governor
	never.Wake() // what the engine calls when GovernProcs returned nil

	g := &Governor{Quiet: 1, Busy: 3, Every: 20 * time.Millisecond, Up: 0.5, Down: 0.2, Calm: 2, Rest: 0.1}
	g.Start()
	defer g.Stop()
	waitFor(t, 10*time.Second, "an idle process did not make the governor rest", g.IsResting)
	if s := g.State(); s != "resting" {
		t.Errorf("State() = %q while resting", s)
	}

	stopSpin := spinCore()
	// Twenty windows of a spinning core: a governor that read them would have gone busy.
	time.Sleep(20 * g.Every)
	if g.IsBusy() || !g.IsResting() {
		t.Fatalf("resting governor: busy %v, resting %v; want it still resting in the quiet size", g.IsBusy(), g.IsResting())
	}
	g.Wake()
	waitFor(t, 10*time.Second, "a woken governor did not go busy with a spinning goroutine", func() bool {
		return g.IsBusy() && !g.IsResting() && runtime.GOMAXPROCS(0) == 3
	})
	if s := g.State(); s != "busy" {
		t.Errorf("State() = %q while busy", s)
	}

	stopSpin()
	waitFor(t, 10*time.Second, "the governor did not go quiet and rest again", func() bool {
		return !g.IsBusy() && g.IsResting() && runtime.GOMAXPROCS(0) == 1
	})
	g.Stop() // from rest
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("after Stop: GOMAXPROCS %d, want the busy size 3", got)
	}
}

package daemon

import (
	"runtime"
	"testing"
)

func TestSetProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })

	t.Setenv("GOMAXPROCS", "")
	if got := SetProcs(1); got != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("SetProcs(1) with GOMAXPROCS unset: %d (runtime %d), want 1", got, runtime.GOMAXPROCS(0))
	}
	if got := SetProcs(0); got != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("SetProcs(0): %d (runtime %d), want it left at 1", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(orig)

	t.Setenv("GOMAXPROCS", "3")
	if got := SetProcs(1); got != orig || runtime.GOMAXPROCS(0) != orig {
		t.Errorf("SetProcs(1) with GOMAXPROCS set: %d (runtime %d), want %d unchanged", got, runtime.GOMAXPROCS(0), orig)
	}
}

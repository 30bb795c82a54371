package daemon

import (
	"runtime"
	"testing"
)

func TestSpareProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })

	t.Setenv("GOMAXPROCS", "")
	if got := SpareProcs(3); got != orig+3 || runtime.GOMAXPROCS(0) != orig+3 {
		t.Errorf("SpareProcs(3) with GOMAXPROCS unset: %d (runtime %d), want %d", got, runtime.GOMAXPROCS(0), orig+3)
	}
	runtime.GOMAXPROCS(orig)

	// An operator's explicit GOMAXPROCS is a cap on parallelism: it stays.
	t.Setenv("GOMAXPROCS", "1")
	if got := SpareProcs(3); got != orig || runtime.GOMAXPROCS(0) != orig {
		t.Errorf("SpareProcs(3) with GOMAXPROCS set: %d (runtime %d), want %d unchanged", got, runtime.GOMAXPROCS(0), orig)
	}
}

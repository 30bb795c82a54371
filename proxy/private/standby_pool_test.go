package private

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"epsproxy/proxy/wire"
)

// testPool is a pool with nothing to dial: enough for its backoff and stock rules.
func testPool() *standbyPool {
	return &standbyPool{p: &Proxy{log: slog.New(slog.NewTextHandler(io.Discard, nil))}, proxy: "public", kick: make(chan struct{}, 1)}
}

// TestStandbyBatchFailureGrowsTheBackoffOnce: the 64 sockets of a batch that a stopping public
// proxy refuses all fail within a moment; the pool pauses for the first backoff step, not for
// the longest, and a new attempt after the pause that fails again grows it by one step.
func TestStandbyBatchFailureGrowsTheBackoffOnce(t *testing.T) {
	sp := testPool()
	dialed := time.Now()
	grew := 0
	for range 64 {
		wait, g := sp.failed(dialed)
		if g {
			grew++
		}
		if wait > firstBackoff {
			t.Fatalf("pause %v after a batch failed, want at most %v", wait, firstBackoff)
		}
	}
	if grew != 1 || sp.backoff != firstBackoff {
		t.Fatalf("the batch grew the backoff %d times to %v, want once to %v", grew, sp.backoff, firstBackoff)
	}
	if wait, g := sp.failed(time.Now()); !g || wait != 2*firstBackoff {
		t.Fatalf("a later attempt failing: pause %v (grew %v), want %v", wait, g, 2*firstBackoff)
	}
}

// TestStandbyForgottenStockIsReplacedAtOnce: a stock the public proxy accepted tokens of and then
// refuses was forgotten (the public proxy restarted): it is dropped and the pool is woken to
// reserve new tokens with no pause. A stock refused before any of its tokens was accepted pauses
// the pool.
func TestStandbyForgottenStockIsReplacedAtOnce(t *testing.T) {
	sp := testPool()
	sp.gen, sp.stock = 1, make([]wire.Token, 8)
	sp.tookToken(1)
	sp.refused(1, time.Now())
	if len(sp.stock) != 0 || sp.gen != 2 {
		t.Fatalf("stock %d tokens, gen %d after a refusal; want it dropped", len(sp.stock), sp.gen)
	}
	if !sp.pause.IsZero() || sp.backoff != 0 {
		t.Fatalf("a forgotten stock paused the pool (pause %v, backoff %v)", sp.pause, sp.backoff)
	}
	select {
	case <-sp.kick:
	default:
		t.Fatal("the pool was not woken to reserve new tokens")
	}

	sp.stock = make([]wire.Token, 8)
	sp.refused(2, time.Now())
	if sp.backoff != firstBackoff || !time.Now().Before(sp.pause) {
		t.Fatalf("a stock refused from the start: backoff %v, pause %v; want a pause of %v", sp.backoff, sp.pause, firstBackoff)
	}
}

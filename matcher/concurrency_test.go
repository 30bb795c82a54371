package matcher

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	concReaders   = 3
	concBatch     = 64 // names per batch: spread over many shards
	concWatchdog  = 30 * time.Second
	concFlipCount = 2000 // announce/withdraw rounds
	concGrowCount = 300  // batches of fresh names
)

// runReaders starts n readers calling read until stop is closed and
// returns a function that stops them and waits, failing the test if they
// do not finish within concWatchdog (a hung reader is a bug, not a slow
// machine).
func runReaders(t *testing.T, n int, read func(r *rand.Rand)) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 1))
			for {
				select {
				case <-done:
					return
				default:
				}
				read(r)
				// Readers outnumber the cores: let the writer run.
				runtime.Gosched()
			}
		}(uint64(i))
	}
	return func() {
		close(done)
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(concWatchdog):
			t.Fatal("readers did not stop")
		}
	}
}

// TestReadersNeverSeeHalfABatch flips a batch of names between announced
// and withdrawn while readers count how many of them one snapshot holds:
// anything but none or all would be a torn batch. Publishing per item
// instead of per batch makes this fail.
func TestReadersNeverSeeHalfABatch(t *testing.T) {
	tb := New(Options{})
	var background []Item
	for i := 0; i < 2000; i++ {
		background = append(background, Item{Domain: fmt.Sprintf("bg%d.test", i)})
	}
	for _, err := range tb.Announce("bg", everything, background, t0) {
		if err != nil {
			t.Fatal(err)
		}
	}
	names := make([][]byte, concBatch)
	on := make([]Item, concBatch)
	off := make([]Item, concBatch)
	for i := range names {
		n := fmt.Sprintf("n%d.batch.test", i)
		names[i] = []byte(n)
		on[i] = Item{Domain: n}
		off[i] = Item{Domain: n, ExpiresAt: t0.Add(-time.Second)}
	}

	now := t0.UnixNano()
	var torn, sawAll, sawNone atomic.Int64
	stop := runReaders(t, concReaders, func(*rand.Rand) {
		s := tb.snap.Load()
		live := 0
		for _, n := range names {
			if _, ok := s.lookup(n, now); ok {
				live++
			}
		}
		switch live {
		case 0:
			sawNone.Add(1)
		case concBatch:
			sawAll.Add(1)
		default:
			torn.CompareAndSwap(0, int64(live))
		}
	})
	for r := 0; r < concFlipCount; r++ {
		items := on
		if r%2 == 1 {
			items = off
		}
		for i, err := range tb.Announce("w", everything, items, t0) {
			if err != nil {
				t.Fatalf("round %d item %d: %v", r, i, err)
			}
		}
	}
	stop()
	if n := torn.Load(); n != 0 {
		t.Fatalf("a reader saw %d of the %d names of one batch", n, concBatch)
	}
	if sawAll.Load() == 0 || sawNone.Load() == 0 {
		t.Fatalf("readers never saw both states (all %d times, none %d times): the check did not run", sawAll.Load(), sawNone.Load())
	}
	if tb.Len() != 2000 {
		t.Errorf("Len = %d after an even number of flips, want 2000", tb.Len())
	}
}

// TestLookupSeesWholeBatchesInOrder uses only the public API: batches of
// fresh names are announced one after another, so the table only grows.
// Once a reader has seen one name of a batch, every later Lookup must see
// all of that batch, and every earlier batch.
func TestLookupSeesWholeBatchesInOrder(t *testing.T) {
	tb := New(Options{})
	name := func(k, i int) []byte { return fmt.Appendf(nil, "n%d.k%d.grow.test", i, k) }
	var started atomic.Int64 // batch being announced
	started.Store(-1)
	var failure atomic.Pointer[string]
	var currentHits atomic.Int64
	fail := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		failure.CompareAndSwap(nil, &s)
	}
	stop := runReaders(t, concReaders, func(r *rand.Rand) {
		k := int(started.Load())
		if k < 0 {
			return
		}
		if k > 0 {
			// Announce of k-1 returned before k started.
			if _, ok := tb.Lookup(name(k-1, r.IntN(concBatch)), t0); !ok {
				fail("a name of batch %d is missing after the batch was announced", k-1)
			}
		}
		if _, ok := tb.Lookup(name(k, r.IntN(concBatch)), t0); !ok {
			return
		}
		currentHits.Add(1)
		for i := 0; i < concBatch; i++ {
			if a, ok := tb.Lookup(name(k, i), t0); !ok || a.Operator != "w" {
				fail("saw part of batch %d but not name %d", k, i)
				return
			}
		}
	})
	items := make([]Item, concBatch)
	for k := 0; k < concGrowCount; k++ {
		for i := range items {
			items[i] = Item{Domain: string(name(k, i))}
		}
		started.Store(int64(k))
		for i, err := range tb.Announce("w", everything, items, t0) {
			if err != nil {
				t.Fatalf("batch %d item %d: %v", k, i, err)
			}
		}
		runtime.Gosched()
	}
	stop()
	if f := failure.Load(); f != nil {
		t.Fatal(*f)
	}
	if currentHits.Load() == 0 {
		t.Fatal("readers never caught a batch right after it was published: the check did not run")
	}
	if tb.Len() != concGrowCount*concBatch {
		t.Errorf("Len = %d, want %d", tb.Len(), concGrowCount*concBatch)
	}
}

// TestConcurrentWritersAndReaders runs every kind of write from several
// goroutines at once under the race detector and checks the bookkeeping
// adds up afterwards.
func TestConcurrentWritersAndReaders(t *testing.T) {
	tb := New(Options{MaxEntries: 500, MaxPerOperator: 200})
	stop := runReaders(t, 2, func(r *rand.Rand) {
		tb.Lookup(fmt.Appendf(nil, "n%d.test", r.IntN(300)), t0)
		tb.Lookup(fmt.Appendf(nil, "x.w%d.test", r.IntN(10)), t0)
	})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			op := fmt.Sprintf("op%d", w)
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := 0; i < 300; i++ {
				n := fmt.Sprintf("n%d.test", r.IntN(300))
				switch r.IntN(5) {
				case 0:
					tb.Withdraw(op, n)
				case 1:
					tb.Purge(t0.Add(time.Duration(r.IntN(3)) * time.Hour))
				case 2:
					tb.Announce(op, everything, []Item{{Domain: fmt.Sprintf("*.w%d.test", r.IntN(10))}}, t0)
				default:
					tb.Announce(op, everything, []Item{{Domain: n, ExpiresAt: t0.Add(time.Duration(r.IntN(3)) * time.Hour)}}, t0)
				}
				tb.List(t0)
			}
		}(w)
	}
	wg.Wait()
	stop()

	// The writer-side counts must match what the snapshot holds.
	tb.mu.Lock()
	defer tb.mu.Unlock()
	perOp := map[string]int{}
	total := 0
	tb.snap.Load().each(func(e entry) { perOp[e.operator]++; total++ })
	if total != tb.Len() {
		t.Errorf("snapshot holds %d entries, Len says %d", total, tb.Len())
	}
	if fmt.Sprint(perOp) != fmt.Sprint(tb.ops) {
		t.Errorf("per-operator counts %v, snapshot holds %v", tb.ops, perOp)
	}
}

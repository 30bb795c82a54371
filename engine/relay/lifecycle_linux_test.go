package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestThousandPairs: 1,000 pairs cost no goroutines, a little heap each, and every
// descriptor comes back after Close.
func TestThousandPairs(t *testing.T) {
	const pairs = 1000
	g := newRig(t)
	r, done := testRelay(t, Config{})
	// Warm up: one pair through its whole life, so lazily created runtime state
	// (netpoller, timers, pools) is in the baseline.
	c, s := g.pipeline(t, r, nil, nil, nil)
	_ = c.CloseWrite()
	_ = s.CloseWrite()
	_ = readEnd(c)
	_ = readEnd(s)
	waitStats(t, done, 1)
	_ = c.Close()
	_ = s.Close()
	time.Sleep(10 * time.Millisecond)

	fdsBefore := fdSet(t)
	relayFDs := 2*len(r.loops) + 2*r.PipesOpen() // epoll + eventfd per loop, pooled pipes
	countBefore := fdCount(t)
	goroutinesBefore := runtime.NumGoroutine()

	type ends struct {
		client, server *net.TCPConn
		a, b           int
	}
	all := make([]ends, pairs)
	for i := range all {
		all[i].client, all[i].server, all[i].a, all[i].b = g.rawFDs(t)
	}
	var m0, m1 runtime.MemStats
	settleHeap(&m0)

	// Add from several goroutines at once, as both proxies do.
	var wg sync.WaitGroup
	errs := make(chan error, pairs)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < pairs; i += 4 {
				errs <- r.Add(all[i].a, all[i].b, nil, nil, nil)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	// One byte through every pair proves each is registered and relaying.
	buf := make([]byte, 1)
	for i, e := range all {
		if _, err := e.client.Write(buf); err != nil {
			t.Fatalf("pair %d: %v", i, err)
		}
		if _, err := io.ReadFull(e.server, buf); err != nil {
			t.Fatalf("pair %d: %v", i, err)
		}
	}
	settleHeap(&m1)
	perPair := (int64(m1.HeapAlloc) - int64(m0.HeapAlloc)) / pairs
	t.Logf("relay heap per idle pair: %d B (1,000 pairs, after GC; slab record %d B)", perPair, unsafe.Sizeof(pair{}))
	if perPair > 1024 {
		t.Errorf("relay heap per idle pair %d B, want well under 1 KiB", perPair)
	}

	if n := r.Pairs(); n != pairs {
		t.Errorf("Pairs() = %d, want %d", n, pairs)
	}
	if n := runtime.NumGoroutine(); n > goroutinesBefore+5 {
		t.Errorf("goroutines: %d with %d pairs, %d before", n, pairs, goroutinesBefore)
	}
	if n := r.PipesInUse(); n != 0 {
		t.Errorf("PipesInUse() = %d with every pair idle", n)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range waitStats(t, done, pairs) {
		if s.Reason != ReasonShutdown || s.AToB != 1 || s.BToA != 0 {
			t.Fatalf("stats %+v, want shutdown after 1 byte a to b", s)
		}
	}
	for i, e := range all {
		if err := readEnd(e.client); isTimeout(err) {
			t.Fatalf("client %d still open after Close", i)
		}
		_ = e.client.Close()
		_ = e.server.Close()
	}
	if n := r.Pairs(); n != 0 {
		t.Errorf("Pairs() = %d after Close", n)
	}
	if n := r.PipesOpen(); n != 0 {
		t.Errorf("PipesOpen() = %d after Close", n)
	}
	waitNoNewFDs(t, fdsBefore)
	// The relay's own descriptors are gone too: it was created before the
	// baseline, so the count must now be below it by at least those.
	if n := fdCount(t); n > countBefore-relayFDs {
		t.Errorf("%d descriptors open, want at most %d once the relay's %d are closed", n, countBefore-relayFDs, relayFDs)
	}
}

func TestCloseEndsPairsAndRefusesAdds(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	client, server := g.pipeline(t, r, nil, nil, "open")
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(server, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if s := waitStats(t, done, 1)[0]; s.Reason != ReasonShutdown || s.Tag != "open" {
		t.Fatalf("stats %+v", s)
	}
	for _, c := range []*net.TCPConn{client, server} {
		if err := readEnd(c); isTimeout(err) {
			t.Fatal("connection still open after Close")
		}
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Add after Close: ErrClosed, and the relay still closes what it was given.
	c2, a, b, s2 := g.conns(t)
	if err := r.AddConns(a, b, nil, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddConns after Close: %v, want ErrClosed", err)
	}
	for _, c := range []*net.TCPConn{c2, s2} {
		if err := readEnd(c); isTimeout(err) {
			t.Fatal("connection given to a closed relay is still open")
		}
	}
	_, _, fa, fb := g.rawFDs(t)
	if err := r.Add(fa, fb, nil, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
	assertClosed(t, fa, fb)
	noMoreStats(t, done, 20*time.Millisecond) // refused pairs are not reported
}

func TestDrainWaitsForPairs(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	client, server := g.pipeline(t, r, nil, nil, nil)
	drained := async(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		return r.Drain(ctx)
	})
	for deadline := time.Now().Add(testTimeout); !r.draining.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Drain did not start")
		}
	}
	// Draining: new pairs are refused (and closed), the running one goes on.
	_, _, fa, fb := g.rawFDs(t)
	if err := r.Add(fa, fb, nil, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add during Drain: %v, want ErrClosed", err)
	}
	assertClosed(t, fa, fb)
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a pair still running", err)
	case <-time.After(50 * time.Millisecond):
	}
	atC, atS := exchange(t, client, server, []byte("still"), []byte("working"))
	if string(atC) != "working" || string(atS) != "still" {
		t.Fatalf("during Drain: client got %q, server got %q", atC, atS)
	}
	wait(t, "Drain", drained)
	if s := waitStats(t, done, 1)[0]; s.Reason != ReasonDone {
		t.Fatalf("stats %+v", s)
	}
}

func TestDrainDeadline(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	client, _ := g.pipeline(t, r, nil, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain: %v, want DeadlineExceeded", err)
	}
	// Drain has closed the relay: the stuck pair is cut off.
	if s := waitStats(t, done, 1)[0]; s.Reason != ReasonShutdown {
		t.Fatalf("stats %+v", s)
	}
	if err := readEnd(client); isTimeout(err) {
		t.Fatal("client still open after Drain gave up")
	}
	if n := r.Pairs(); n != 0 {
		t.Fatalf("Pairs() = %d", n)
	}
}

func TestDrainIdleRelay(t *testing.T) {
	r, _ := testRelay(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain of an empty relay: %v", err)
	}
}

func TestMaxPairs(t *testing.T) {
	r, done := testRelay(t, Config{MaxPairs: 2})
	g := newRig(t)
	c1, s1 := g.pipeline(t, r, nil, nil, 1)
	g.pipeline(t, r, nil, nil, 2)
	client, a, b, server := g.conns(t)
	if err := r.AddConns(a, b, nil, nil, 3); !errors.Is(err, ErrFull) {
		t.Fatalf("third AddConns: %v, want ErrFull", err)
	}
	for _, c := range []*net.TCPConn{client, server} {
		if err := readEnd(c); isTimeout(err) {
			t.Fatal("refused connection still open")
		}
	}
	// When a pair finishes, its place is free again.
	exchange(t, c1, s1, nil, nil)
	if s := waitStats(t, done, 1)[0]; s.Tag != 1 {
		t.Fatalf("stats %+v", s)
	}
	g.pipeline(t, r, nil, nil, 4)
	if n := r.Pairs(); n != 2 {
		t.Fatalf("Pairs() = %d, want 2", n)
	}
}

// SetMaxPairs lowered under the pairs held closes none of them and refuses new ones until they
// number fewer than the new cap; raised, it admits more at once.
func TestSetMaxPairsWhileRelaying(t *testing.T) {
	r, done := testRelay(t, Config{MaxPairs: 3})
	g := newRig(t)
	c1, s1 := g.pipeline(t, r, nil, nil, 1)
	c2, s2 := g.pipeline(t, r, nil, nil, 2)
	if err := r.SetMaxPairs(-1); err == nil {
		t.Fatal("a negative cap was taken")
	}
	if err := r.SetMaxPairs(1); err != nil {
		t.Fatal(err)
	}
	if r.MaxPairs() != 1 {
		t.Fatalf("MaxPairs() = %d, want 1", r.MaxPairs())
	}
	_, a, b, _ := g.conns(t)
	if err := r.AddConns(a, b, nil, nil, 3); !errors.Is(err, ErrFull) {
		t.Fatalf("AddConns over the lowered cap: %v, want ErrFull", err)
	}
	// The pairs held before go on relaying.
	msg := []byte("still relayed")
	if _, err := c2.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = s2.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(s2, got); err != nil || string(got) != string(msg) {
		t.Fatalf("pair 2 after the cap was lowered: %q, %v", got, err)
	}
	if atC, atS := exchange(t, c1, s1, []byte("one"), []byte("two")); string(atC) != "two" || string(atS) != "one" {
		t.Fatalf("pair 1 after the cap was lowered: %q, %q", atC, atS)
	}
	if s := waitStats(t, done, 1)[0]; s.Tag != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Pair 2 alone is held: the cap of 1 is still reached.
	_, a, b, _ = g.conns(t)
	if err := r.AddConns(a, b, nil, nil, 4); !errors.Is(err, ErrFull) {
		t.Fatalf("AddConns at the lowered cap: %v, want ErrFull", err)
	}
	if err := r.SetMaxPairs(0); err != nil {
		t.Fatal(err)
	}
	if r.MaxPairs() != DefaultMaxPairs {
		t.Fatalf("MaxPairs() = %d, want the default %d", r.MaxPairs(), DefaultMaxPairs)
	}
	g.pipeline(t, r, nil, nil, 5)
	g.pipeline(t, r, nil, nil, 6)
	if n := r.Pairs(); n != 3 {
		t.Fatalf("Pairs() = %d, want 3", n)
	}
}

func TestAddRejectsBadInput(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)

	_, _, fa, fb := g.rawFDs(t)
	if err := r.Add(fa, fa, nil, nil, nil); !errors.Is(err, ErrBadFD) {
		t.Errorf("Add(a, a): %v, want ErrBadFD", err)
	}
	assertClosed(t, fa)
	if err := r.Add(-1, fb, nil, nil, nil); !errors.Is(err, ErrBadFD) {
		t.Errorf("Add(-1, b): %v, want ErrBadFD", err)
	}
	assertClosed(t, fb)

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(p[0], p[1], nil, nil, nil); !errors.Is(err, ErrBadFD) {
		t.Errorf("Add(pipe): %v, want ErrBadFD", err)
	}
	assertClosed(t, p[0], p[1])

	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, fa, fb = g.rawFDs(t)
	if err := r.Add(fa, udp, nil, nil, nil); !errors.Is(err, ErrBadFD) {
		t.Errorf("Add(tcp, udp): %v, want ErrBadFD", err)
	}
	assertClosed(t, fa, udp)
	_ = unix.Close(fb)

	client, a, b, server := g.conns(t)
	if err := r.AddConns(a, b, nil, make([]byte, MaxPrefix+1), nil); !errors.Is(err, ErrPrefixTooLarge) {
		t.Errorf("AddConns with a huge prefix: %v, want ErrPrefixTooLarge", err)
	}
	for _, c := range []*net.TCPConn{client, server} {
		if err := readEnd(c); isTimeout(err) {
			t.Error("connection still open after a refused AddConns")
		}
	}

	client, a, _, _ = g.conns(t)
	if err := r.AddConns(a, nil, nil, nil, nil); !errors.Is(err, ErrBadFD) {
		t.Errorf("AddConns(conn, nil): %v, want ErrBadFD", err)
	}
	if err := readEnd(client); isTimeout(err) {
		t.Error("connection still open after AddConns(conn, nil)")
	}
	noMoreStats(t, done, 20*time.Millisecond)
	if n := r.Pairs(); n != 0 {
		t.Errorf("Pairs() = %d after refused Adds", n)
	}
}

// TestBlockingDescriptorIsMadeNonBlocking: a descriptor handed over in blocking
// mode must not be able to stall the loop.
func TestBlockingDescriptorIsMadeNonBlocking(t *testing.T) {
	r, done := testRelay(t, Config{Loops: 1})
	g := newRig(t)
	client, server, a, b := g.rawFDs(t)
	for _, fd := range []int{a, b} {
		if err := unix.SetNonblock(fd, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add(a, b, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	// With a blocking socket the single loop would sit in a read on a or b and
	// never serve this second pair.
	c2, s2 := g.pipeline(t, r, nil, nil, nil)
	atC, atS := exchange(t, c2, s2, []byte("ping"), []byte("pong"))
	if string(atC) != "pong" || string(atS) != "ping" {
		t.Fatalf("second pair: client got %q, server got %q", atC, atS)
	}
	exchange(t, client, server, nil, nil)
	waitStats(t, done, 2)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Loops: -1},
		{Loops: MaxLoops + 1},
		{PipeSize: 100},
		{PipeSize: MaxPipeSize + 1},
		{IdleTimeout: -time.Second},
		{MaxPairs: -1},
		{MaxPairs: MaxMaxPairs + 1},
	} {
		if r, err := New(cfg); err == nil {
			_ = r.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// settleHeap reads the live heap. Two GCs: the first runs the finalizers of the
// net.Conns that were just closed, the second frees what they held.
func settleHeap(m *runtime.MemStats) {
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(m)
}

// assertClosed checks that the relay closed descriptors it refused.
func assertClosed(t *testing.T, fds ...int) {
	t.Helper()
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("fd %d still open (fcntl: %v)", fd, err)
			_ = unix.Close(fd)
		}
	}
}

// TestNoDescriptorLeaks ends pairs every way there is (done, reset while a pipe
// holds bytes, idle, unconnected socket, shutdown) and checks that the process
// is back to its descriptor count once the relay is closed.
func TestNoDescriptorLeaks(t *testing.T) {
	g := newRig(t)
	fdsBefore := fdSet(t)
	r, done := testRelay(t, Config{Loops: 1, IdleTimeout: time.Second})

	// done
	c, s := g.pipeline(t, r, []byte("hi"), []byte("there"), "done")
	exchange(t, c, s, []byte("a"), []byte("b"))

	// Reset while the relay holds bytes in a pipe for a server that reads nothing.
	c, s = g.pipeline(t, r, nil, nil, "reset")
	sender := async(func() error {
		_, err := sendStream(c, 4, 64<<20)
		return err
	})
	for deadline := time.Now().Add(testTimeout); r.PipesInUse() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no pipe ever held for the stalled pair")
		}
	}
	_ = s.SetLinger(0)
	_ = s.Close()
	if err := <-sender; err == nil {
		t.Fatal("client's 64 MiB all went through to a server that read nothing")
	}

	// An unconnected socket: the pair must end with an error, not hang.
	unconnected, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c3, _, a3, b3 := g.rawFDs(t)
	_ = unix.Close(b3)
	if err := r.Add(a3, unconnected, nil, []byte("x"), "unconnected"); err != nil {
		t.Fatal(err)
	}

	// idle: nothing ever moves.
	g.pipeline(t, r, nil, nil, "idle")

	ended := map[any]Stats{}
	for _, st := range waitStats(t, done, 4) {
		ended[st.Tag] = st
	}
	want := map[string]Reason{"done": ReasonDone, "idle": ReasonIdle, "reset": ReasonFailed, "unconnected": ReasonFailed}
	for tag, reason := range want {
		st := ended[tag]
		var pe *PairError
		if st.Reason != reason || (reason == ReasonFailed) != errors.As(st.Err, &pe) {
			t.Errorf("pair %q ended with %v (err %v), want %v", tag, st.Reason, st.Err, reason)
		}
	}
	// Nothing is connected on the unconnected socket, b: whatever the relay tried first
	// there failed, and the error says it was b.
	var pe *PairError
	if errors.As(ended["unconnected"].Err, &pe) && pe.Side != "b" {
		t.Errorf("unconnected pair: error %v, want it on side b", pe)
	}
	t.Logf("reset: %v; unconnected: %v", ended["reset"].Err, ended["unconnected"].Err)
	if err := readEnd(c3); isTimeout(err) {
		t.Fatal("client of the unconnected pair still open")
	}
	// The pipe that held the reset pair's bytes was closed, not pooled.
	for deadline := time.Now().Add(testTimeout); r.PipesInUse() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("PipesInUse() = %d after the pair holding it failed", r.PipesInUse())
		}
	}

	// shutdown
	g.pipeline(t, r, nil, nil, "open")
	_ = r.Close()
	if st := waitStats(t, done, 1)[0]; st.Reason != ReasonShutdown {
		t.Fatalf("stats %+v", st)
	}
	// Close every test-side end too; only the listeners (opened before) remain.
	g.closeEnds()
	waitNoNewFDs(t, fdsBefore)
}

// TestAddRacingClose: Adds from several goroutines race with Close. Every Add that
// returned nil gets exactly one OnDone by the time Close returns, every refused
// one gets none, and no descriptor is left open either way.
func TestAddRacingClose(t *testing.T) {
	const workers, perWorker = 4, 60
	g := newRig(t)
	// Build every pipeline first, so the race is only between Add and Close.
	type ends struct{ a, b int }
	all := make([][]ends, workers)
	for w := range all {
		all[w] = make([]ends, perWorker)
		for i := range all[w] {
			_, _, all[w][i].a, all[w][i].b = g.rawFDs(t)
		}
	}
	fdsBefore := fdSet(t)
	var relayEnds []string
	for _, w := range all {
		for _, e := range w {
			for _, fd := range []int{e.a, e.b} {
				target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
				if err != nil {
					t.Fatal(err)
				}
				relayEnds = append(relayEnds, target)
			}
		}
	}
	var reported atomic.Int64
	r, err := New(Config{OnDone: func(Stats) { reported.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	var accepted, added atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for _, e := range all[w] {
				err := r.Add(e.a, e.b, nil, []byte("hello"), nil)
				switch {
				case err == nil:
					accepted.Add(1)
				case !errors.Is(err, ErrClosed):
					t.Errorf("Add: %v", err)
				}
				added.Add(1)
			}
		})
	}
	for added.Load() < workers {
		runtime.Gosched()
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if accepted.Load() == 0 || accepted.Load() == workers*perWorker {
		t.Logf("no race happened this time: %d of %d accepted", accepted.Load(), workers*perWorker)
	}
	if a, n := accepted.Load(), reported.Load(); a != n {
		t.Fatalf("%d Adds accepted, %d OnDone reports", a, n)
	}
	// Every descriptor handed to Add, accepted or refused, is closed now.
	open := fdSet(t)
	for _, e := range relayEnds {
		if open[e] > 0 {
			t.Fatalf("relay-side socket %s still open after Close", e)
		}
	}
	g.closeEnds()
	waitNoNewFDs(t, fdsBefore)
}

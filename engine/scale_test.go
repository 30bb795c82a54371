package engine_test

import (
	"net"
	"runtime"
	"testing"

	"epsproxy/engine"
)

// Clients in the hello phase live in gnet's loops: a thousand of them cost no goroutine, and the
// caps on hello connections and waiting clients close the extra ones at once.

// goroutineSlack is how many goroutines a test tolerates above its baseline for the runtime's
// own comings and goings.
const goroutineSlack = 10

// partialClients opens n connections to the public port that each send the first bytes of hello.
func partialClients(t testing.TB, r *rig, n int, hello []byte) []net.Conn {
	t.Helper()
	cs := make([]net.Conn, 0, n)
	for range n {
		c := dial(t, r.cfg.PublicAddr)
		if _, err := c.Write(hello[:50]); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// Not parallel: it counts the process's goroutines.
func TestThousandHelloClientsCostNoGoroutines(t *testing.T) {
	const clients = 1000
	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.MaxHelloPerSource = -1 // every client is 127.0.0.1
	})
	hello := captureHello(t, r.clientTC)
	// One client through first, so whatever starts lazily has started.
	if err := goodClient(r); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first client's backend goroutine to end", func() bool { return r.relay.Pairs() == 0 })
	base := runtime.NumGoroutine()

	cs := partialClients(t, r, clients, hello)
	waitFor(t, "the engine to hold every client in the hello phase", func() bool { return r.eng.HelloConns() == clients })
	n := runtime.NumGoroutine()
	if n > base+goroutineSlack {
		t.Errorf("%d goroutines with %d clients in the hello phase, baseline %d", n, clients, base)
	}
	t.Logf("goroutines: %d before, %d with %d clients in the hello phase", base, n, clients)
	wait(t, goodClientAsync(r), "client served among a thousand waiting ones")
	for _, c := range cs {
		c.Close()
	}
	waitFor(t, "HelloConns to fall to zero", func() bool { return r.eng.HelloConns() == 0 })
	wantStats(t, r.eng, map[string]int64{"Accepted": clients + 2, "Matched": 2, "Paired": 2})
}

func TestMaxHelloConnsClosesTheExtraClient(t *testing.T) {
	t.Parallel()
	const limit = 100
	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.MaxHelloConns = limit
		c.MaxHelloPerSource = -1 // every client is 127.0.0.1: the total is what is tested
	})
	hello := captureHello(t, r.clientTC)
	cs := partialClients(t, r, limit, hello)
	waitFor(t, "the engine to hold the clients", func() bool { return r.eng.HelloConns() == limit })

	extra := dial(t, r.cfg.PublicAddr)
	refusedAtOnce(t, extra, "client over MaxHelloConns")
	stillOpen(t, cs[0], "client under the cap")

	// A place freed is a place taken: the next client gets in and is served.
	cs[limit-1].Close()
	waitFor(t, "a hello place to free", func() bool { return r.eng.HelloConns() == limit-1 })
	wait(t, goodClientAsync(r), "client after a place freed")
	wantStats(t, r.eng, map[string]int64{"Accepted": limit + 2, "Refused": 1, "Overloaded": 1, "Matched": 1, "Paired": 1})
}

func TestMaxPendingClosesTheExtraMatchedClient(t *testing.T) {
	t.Parallel()
	const limit = 3
	r := newRig(t, func(c *engine.Config) {
		c.AcceptTimeout = longPhase
		c.MaxPending = limit
	})
	r.holdNotices()
	hello := captureHello(t, r.clientTC)
	var waiting []net.Conn
	for range limit {
		c := dial(t, r.cfg.PublicAddr)
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		r.nextNotice(t)
		waiting = append(waiting, c)
	}
	extra := dial(t, r.cfg.PublicAddr)
	if _, err := extra.Write(hello); err != nil {
		t.Fatal(err)
	}
	refusedAtOnce(t, extra, "matched client over MaxPending")
	for _, c := range waiting {
		stillOpen(t, c, "client under the cap")
	}
	if p, h := r.eng.Pending(), r.eng.HelloConns(); p != limit || h != 0 {
		t.Errorf("Pending = %d, HelloConns = %d; want %d and 0", p, h, limit)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": limit + 1, "Matched": limit, "Refused": 1, "Overloaded": 1})
}

package engine_test

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"epsproxy/engine"
)

// Near the descriptor limit the engine refuses new connections at once, on both listeners,
// rather than let accept fail; once descriptors free up it serves again.

// Not parallel: the engine's budget is counted from the process's open descriptors.
func TestFDBudgetRefusesBeforeTheLimit(t *testing.T) {
	const room = 20 // connections the budget leaves
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.TokenTimeout = longPhase
		// New raises the soft limit to the hard one and budgets from there.
		c.FDReserve = int(lim.Max) - openFDs(t) - room
	})
	hello := captureHello(t, r.clientTC)
	var held []net.Conn
	refused := -1
	for i := range room + 10 {
		c := dial(t, r.cfg.PublicAddr)
		if _, err := c.Write(hello[:50]); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		waitFor(t, "the connection to be admitted or refused", func() bool {
			s := r.eng.Stats()
			return int(s.Overloaded.Load())+r.eng.HelloConns() == i+1
		})
		if r.eng.Stats().Overloaded.Load() > 0 {
			refused = i
			refusedAtOnce(t, c, "client over the descriptor budget")
			break
		}
	}
	if refused < 0 {
		t.Fatalf("%d connections admitted with room for about %d", len(held), room)
	}
	t.Logf("refused the connection #%d with room for %d", refused+1, room)
	refusedAtOnce(t, dial(t, r.cfg.InternalAddr), "internal connection over the descriptor budget")

	for _, c := range held {
		c.Close()
	}
	waitFor(t, "the held clients to be closed", func() bool { return r.eng.HelloConns() == 0 })
	wait(t, goodClientAsync(r), "client once descriptors are free")
	wantStats(t, r.eng, map[string]int64{
		"Accepted": int64(refused) + 2, "Refused": 1, "Overloaded": 2, "Matched": 1, "Paired": 1,
	})
}

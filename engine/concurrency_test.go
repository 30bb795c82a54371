package engine_test

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"epsproxy/engine"
)

// Many clients at once, and the races the pending table arbitrates: whoever takes a token owns
// the client, so a client is paired or closed, never both, and nothing is left over.

func TestManyClientsAtOnce(t *testing.T) {
	t.Parallel()
	const clients = 100
	r := newRig(t, nil)
	errs := make(chan error, clients)
	for range clients {
		go func() { errs <- goodClient(r) }()
	}
	for range clients {
		wait(t, errs, "concurrent client")
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": clients, "Matched": clients, "Paired": clients})
	if h, p := r.eng.HelloConns(), r.eng.Pending(); h != 0 || p != 0 {
		t.Errorf("HelloConns = %d, Pending = %d after every client is done, want 0 and 0", h, p)
	}
}

// race runs each client's two contenders at the same moment.
func race(a, b func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() { <-start; a() })
	wg.Go(func() { <-start; b() })
	close(start)
	wg.Wait()
}

func TestCancelRacesPairing(t *testing.T) {
	t.Parallel()
	const clients = 40
	r := newRig(t, func(c *engine.Config) { c.AcceptTimeout, c.TokenTimeout = longPhase, longPhase })
	r.holdNotices()
	rng := rand.New(rand.NewPCG(3, 4))
	var wg sync.WaitGroup
	var mu sync.Mutex
	paired, closed := 0, 0
	for range clients {
		client := startTLS(t, r.cfg.PublicAddr, r.clientTC)
		tok := r.nextNotice(t).Token
		// Dialling takes a moment that Cancel does not: a random head start for the dial
		// lets either win.
		delay := time.Duration(rng.Int64N(int64(time.Millisecond)))
		wg.Go(func() {
			race(func() {
				time.Sleep(delay)
				r.eng.Cancel(tok, "race")
			}, func() { _ = r.dialBack(tok) })
			var err error
			select {
			case err = <-client.done:
			case <-time.After(2 * patience):
				t.Error("client neither paired nor closed")
				return
			}
			if err == nil {
				err = echo(client.c, []byte("won"))
				if err != nil {
					t.Errorf("paired client: %v", err)
				}
			}
			mu.Lock()
			if err == nil {
				paired++
			} else {
				closed++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("%d paired, %d cancelled", paired, closed)
	wantStats(t, r.eng, map[string]int64{
		"Accepted": clients, "Matched": clients,
		"Paired": int64(paired), "NotifyFailed": int64(closed), "BadTokens": int64(closed),
	})
}

func TestExpiryRacesPairing(t *testing.T) {
	t.Parallel()
	const (
		clients       = 40
		acceptTimeout = 60 * time.Millisecond
	)
	r := newRig(t, func(c *engine.Config) {
		c.AcceptTimeout = acceptTimeout
		c.TokenTimeout = longPhase
		c.Tick = 5 * time.Millisecond
	})
	r.holdNotices()
	hello := captureHello(t, r.clientTC)
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	for range clients {
		c := dial(t, r.cfg.PublicAddr)
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		tok := r.nextNotice(t).Token
		delay := time.Duration(rng.Int64N(int64(2 * acceptTimeout)))
		wg.Go(func() {
			time.Sleep(delay)
			_ = r.dialBack(tok)
		})
	}
	wg.Wait()
	waitFor(t, "every client to be paired or expired", func() bool {
		s := r.eng.Stats()
		return s.Paired.Load()+s.Expired.Load() == clients
	})
	s := r.eng.Stats()
	t.Logf("%d paired, %d expired", s.Paired.Load(), s.Expired.Load())
	wantStats(t, r.eng, map[string]int64{
		"Accepted": clients, "Matched": clients,
		"Paired": s.Paired.Load(), "Expired": s.Expired.Load(), "BadTokens": s.Expired.Load(),
	})
	if p := r.eng.Pending(); p != 0 {
		t.Errorf("Pending = %d, want 0", p)
	}
}

// A client that leaves just as its private side presents the token leaves nothing behind: no
// pending entry, no relayed pair.
func TestClientLeavesAsItsPrivateSideArrives(t *testing.T) {
	t.Parallel()
	const clients = 40
	r := newRig(t, func(c *engine.Config) { c.AcceptTimeout, c.TokenTimeout = longPhase, longPhase })
	r.holdNotices()
	hello := captureHello(t, r.clientTC)
	var wg sync.WaitGroup
	for range clients {
		c, err := net.DialTimeout("tcp", r.cfg.PublicAddr, patience)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		tok := r.nextNotice(t).Token
		wg.Go(func() { race(func() { c.Close() }, func() { _ = r.dialBack(tok) }) })
	}
	wg.Wait()
	waitFor(t, "the pending table to empty", func() bool { return r.eng.Pending() == 0 })
	waitFor(t, "every relayed pair to end", func() bool { return r.relay.Pairs() == 0 })
	s := r.eng.Stats()
	if p, b := s.Paired.Load(), s.BadTokens.Load(); p+b > clients {
		t.Errorf("%d paired and %d tokens refused for %d clients", p, b, clients)
	}
}

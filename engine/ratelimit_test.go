package engine_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"epsproxy/engine"
)

// Per-source rate limits: the (limit+1)th connection from 127.0.0.1 in a window is closed at
// once, and the next window starts afresh (the original EPS's limiter never reset). Each listener
// counts on its own.

var rate = engine.RateLimit{Limit: 5, Window: 500 * time.Millisecond}

// burst opens n connections to addr as fast as it can and returns them with the time just
// before the first.
func burst(t testing.TB, addr string, n int) ([]net.Conn, time.Time) {
	t.Helper()
	start := time.Now()
	cs := make([]net.Conn, n)
	for i := range cs {
		cs[i] = dial(t, addr)
	}
	return cs, start
}

// sortOut waits until the engine has rate-limited wantRefused connections in all, then reads
// from every connection in cs at once to tell the ones it closed from the ones it kept. Which of
// a burst's connections is over the limit is the engine's call: the loops open connections in
// their own order, not in the order they were dialled.
func sortOut(t testing.TB, r *rig, cs []net.Conn, wantRefused int64) (refused, kept []net.Conn) {
	t.Helper()
	waitFor(t, "the engine to rate-limit a connection", func() bool { return r.eng.Stats().RateLimited.Load() >= wantRefused })
	results := make([]closeResult, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			results[i] = awaitClose(c, time.Now(), time.Second)
			_ = c.SetReadDeadline(time.Time{})
		})
	}
	wg.Wait()
	for i, res := range results {
		switch {
		case res.closed && res.got == 0:
			refused = append(refused, cs[i])
		case !res.closed && res.got == 0:
			kept = append(kept, cs[i])
		default:
			t.Errorf("connection %d: %v", i+1, res)
		}
	}
	return refused, kept
}

// sleepUntil sleeps until at.
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

func TestPublicRateLimitWindowResets(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.PublicRate = rate
	})
	cs, start := burst(t, r.cfg.PublicAddr, rate.Limit+1)
	refused, kept := sortOut(t, r, cs, 1)
	if len(refused) != 1 || len(kept) != rate.Limit {
		t.Fatalf("%d connections refused and %d kept, want 1 and %d", len(refused), len(kept), rate.Limit)
	}
	if n := r.eng.HelloConns(); n != rate.Limit {
		t.Errorf("HelloConns = %d, want %d", n, rate.Limit)
	}

	// A new window: a new connection is accepted and served end to end.
	sleepUntil(start.Add(rate.Window + 100*time.Millisecond))
	wait(t, goodClientAsync(r), "client in the next window")
	wantStats(t, r.eng, map[string]int64{"Accepted": int64(rate.Limit) + 2, "RateLimited": 1, "Refused": 1, "Matched": 1, "Paired": 1})
}

func TestInternalRateLimitWindowResets(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.TokenTimeout = longPhase
		c.InternalRate = rate
	})
	r.holdNotices()
	cs, start := burst(t, r.cfg.InternalAddr, rate.Limit+1)
	refused, kept := sortOut(t, r, cs, 1)
	if len(refused) != 1 || len(kept) != rate.Limit {
		t.Fatalf("%d internal connections refused and %d kept, want 1 and %d", len(refused), len(kept), rate.Limit)
	}
	// A kept connection is a working private side.
	client := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	n := r.nextNotice(t)
	if _, err := kept[0].Write(n.Token[:]); err != nil {
		t.Fatal(err)
	}
	if err := r.relayToBackend(kept[0]); err != nil {
		t.Fatal(err)
	}
	wait(t, client.done, "client paired over an allowed internal connection")
	if err := echo(client.c, []byte("ok")); err != nil {
		t.Error(err)
	}

	// A new window: a new private side gets in.
	sleepUntil(start.Add(rate.Window + 100*time.Millisecond))
	client2 := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	pair(t, r, r.nextNotice(t).Token)
	wait(t, client2.done, "client paired in the next window")
	if err := echo(client2.c, []byte("ok")); err != nil {
		t.Error(err)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 2, "Matched": 2, "Paired": 2, "RateLimited": 1})
}

// Using up the public listener's allowance leaves the internal one's whole, and the reverse.
func TestRateLimitsAreSeparatePerListener(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.TokenTimeout = longPhase
		c.PublicRate = rate
		c.InternalRate = rate
	})
	// Both bursts fit in one window: sortOut's waits are well under it.
	pub, _ := burst(t, r.cfg.PublicAddr, rate.Limit+1)
	waitFor(t, "the public burst to be counted", func() bool { return r.eng.Stats().RateLimited.Load() == 1 })
	internal, _ := burst(t, r.cfg.InternalAddr, rate.Limit+1)
	refused, kept := sortOut(t, r, append(pub, internal...), 2)
	if len(refused) != 2 || len(kept) != 2*rate.Limit {
		t.Fatalf("%d connections refused and %d kept, want 2 and %d", len(refused), len(kept), 2*rate.Limit)
	}
	if n := r.eng.HelloConns(); n != rate.Limit {
		t.Errorf("HelloConns = %d, want %d", n, rate.Limit)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": int64(rate.Limit) + 1, "RateLimited": 2, "Refused": 1})
}

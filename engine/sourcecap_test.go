package engine_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"epsproxy/engine"
)

// Per-source caps on the phases a connection can hold without proving anything: one source
// cannot take every hello slot of the public port, and connections that never send a token
// cannot take the internal port's. Loopback gives distinct IPv4 sources (127.0.0.2, ...); the
// grouping of IPv6 addresses by /64 is tested on the caps directly (phasecap_test.go).

// dialFrom opens a TCP connection to addr from the local address ip.
func dialFrom(t testing.TB, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: patience, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// goodClientFrom is goodClient from the local address ip.
func goodClientFrom(t testing.TB, r *rig, ip string) {
	t.Helper()
	c := tls.Client(dialFrom(t, ip, r.cfg.PublicAddr), r.clientTC)
	_ = c.SetDeadline(time.Now().Add(2 * patience))
	if err := c.Handshake(); err != nil {
		t.Fatalf("client from %s: %v", ip, err)
	}
	_ = c.SetDeadline(time.Time{})
	if err := echo(c, []byte("from "+ip)); err != nil {
		t.Errorf("client from %s: %v", ip, err)
	}
	c.Close()
}

// wantNoSources waits until the caps' maps hold no source.
func wantNoSources(t testing.TB, r *rig) {
	t.Helper()
	waitFor(t, "the per-source counts to empty", func() bool {
		h, tk := engine.PhaseSources(r.eng)
		return h == 0 && tk == 0
	})
}

func TestHelloCapPerSource(t *testing.T) {
	t.Parallel()
	const perSource = 3
	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.MaxHelloPerSource = perSource
	})
	var silent []net.Conn
	for range perSource {
		silent = append(silent, dialFrom(t, "127.0.0.1", r.cfg.PublicAddr))
	}
	waitFor(t, "the engine to hold the silent clients", func() bool { return r.eng.HelloConns() == perSource })
	refusedAtOnce(t, dialFrom(t, "127.0.0.1", r.cfg.PublicAddr), "client over its source's hello cap")
	goodClientFrom(t, r, "127.0.0.2")
	stillOpen(t, silent[0], "silent client under the cap")

	// A place freed is the source's again.
	silent[0].Close()
	waitFor(t, "a hello place to free", func() bool { return r.eng.HelloConns() == perSource-1 })
	goodClientFrom(t, r, "127.0.0.1")

	for _, c := range silent {
		c.Close()
	}
	wantIdle(t, r)
	wantNoSources(t, r)
	wantStats(t, r.eng, map[string]int64{"Accepted": perSource + 3, "Refused": 1, "SourceBusy": 1, "Matched": 2, "Paired": 2})
}

// Whichever way a connection leaves the hello phase (timeout, refusal, match), it gives its
// source's place back: with a cap of one, each next connection of the source gets in.
func TestHelloCapFreesOnEveryExit(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = 300 * time.Millisecond
		c.MaxHelloPerSource = 1
	})
	start := time.Now()
	if res := awaitClose(dial(t, r.cfg.PublicAddr), start, patience); !res.closed || res.elapsed < 300*time.Millisecond {
		t.Fatalf("silent client: want a close at the hello deadline, got %v", res)
	}
	bad := dial(t, r.cfg.PublicAddr)
	_, _ = bad.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	refusedAtOnce(t, bad, "HTTP request")
	wait(t, goodClientAsync(r), "client after a timeout and a refusal")
	wait(t, goodClientAsync(r), "client after a match")
	wantIdle(t, r)
	wantNoSources(t, r)
	wantStats(t, r.eng, map[string]int64{"Accepted": 4, "Refused": 2, "HelloTimeouts": 1, "Matched": 2, "Paired": 2})
}

func TestHelloCapPerSourceIPv6(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.PublicAddr, c.InternalAddr = freeAddr6(t), freeAddr6(t)
		c.HelloTimeout = longPhase
		c.MaxHelloPerSource = 1
	})
	held := dial(t, r.cfg.PublicAddr)
	waitFor(t, "the first connection from ::1 to be held", func() bool { return r.eng.HelloConns() == 1 })
	refusedAtOnce(t, dial(t, r.cfg.PublicAddr), "second connection from ::1's /64")
	stillOpen(t, held, "first connection from ::1")
	held.Close()
	wait(t, goodClientAsync(r), "client from ::1 once the place is free")
	wantNoSources(t, r)
	wantStats(t, r.eng, map[string]int64{"Accepted": 3, "Refused": 1, "SourceBusy": 1, "Matched": 1, "Paired": 1})
}

// Silent internal connections are capped per source and in all; a private side presenting a
// token still pairs.
func TestTokenPhaseCaps(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.TokenTimeout = longPhase
		c.MaxTokenConns = 3
		c.MaxTokenPerSource = 2
	})
	r.holdNotices()
	a1 := dialFrom(t, "127.0.0.2", r.cfg.InternalAddr)
	a2 := dialFrom(t, "127.0.0.2", r.cfg.InternalAddr)
	waitFor(t, "two silent internal connections held", func() bool { return r.eng.TokenConns() == 2 })
	refusedAtOnce(t, dialFrom(t, "127.0.0.2", r.cfg.InternalAddr), "third silent connection of a source")
	b := dialFrom(t, "127.0.0.3", r.cfg.InternalAddr)
	waitFor(t, "three silent internal connections held", func() bool { return r.eng.TokenConns() == 3 })
	refusedAtOnce(t, dialFrom(t, "127.0.0.4", r.cfg.InternalAddr), "silent connection over the total")
	wantStats(t, r.eng, map[string]int64{"SourceBusy": 1, "Overloaded": 1})

	// Under the total, a private side's dial-back pairs while the silent ones wait.
	b.Close()
	waitFor(t, "a token place to free", func() bool { return r.eng.TokenConns() == 2 })
	client := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	pair(t, r, r.nextNotice(t).Token)
	wait(t, client.done, "client paired past the silent internal connections")
	if err := echo(client.c, []byte("paired")); err != nil {
		t.Error(err)
	}
	stillOpen(t, a1, "silent internal connection under the caps")

	a1.Close()
	a2.Close()
	waitFor(t, "the token phase to empty", func() bool { return r.eng.TokenConns() == 0 })
	wantNoSources(t, r)
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1, "SourceBusy": 1, "Overloaded": 1})
}

// A per-source hello cap that was off at start is turned on by Reconfigure (a reload): the
// connections already in the hello phase finish as they were, uncounted, and the cap counts
// those that come after it.
func TestHelloCapTurnedOnByReconfigure(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.MaxHelloPerSource = -1
	})
	var silent []net.Conn
	for range 4 {
		silent = append(silent, dialFrom(t, "127.0.0.1", r.cfg.PublicAddr))
	}
	waitFor(t, "the engine to hold the silent clients", func() bool { return r.eng.HelloConns() == 4 })
	lim := engine.Limits{HelloTimeout: longPhase, MaxHelloPerSource: 2}
	if err := r.eng.Reconfigure(lim); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		silent = append(silent, dialFrom(t, "127.0.0.1", r.cfg.PublicAddr))
	}
	waitFor(t, "the engine to hold the new silent clients", func() bool { return r.eng.HelloConns() == 6 })
	refusedAtOnce(t, dialFrom(t, "127.0.0.1", r.cfg.PublicAddr), "client over the cap a reload turned on")
	goodClientFrom(t, r, "127.0.0.2")
	stillOpen(t, silent[0], "silent client from before the cap")

	// Those from before leave without freeing a counted place; one counted leaving does.
	silent[0].Close()
	waitFor(t, "an uncounted client to leave", func() bool { return r.eng.HelloConns() == 5 })
	refusedAtOnce(t, dialFrom(t, "127.0.0.1", r.cfg.PublicAddr), "client over the cap after an uncounted one left")
	silent[5].Close()
	waitFor(t, "a counted client to leave", func() bool { return r.eng.HelloConns() == 4 })
	goodClientFrom(t, r, "127.0.0.1")

	// Off again: the source may hold more.
	lim.MaxHelloPerSource = -1
	if err := r.eng.Reconfigure(lim); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		silent = append(silent, dialFrom(t, "127.0.0.1", r.cfg.PublicAddr))
	}
	waitFor(t, "the engine to hold the clients the lifted cap let in", func() bool { return r.eng.HelloConns() == 7 })
	for _, c := range silent {
		c.Close()
	}
	wantIdle(t, r)
	wantNoSources(t, r)
}

package engine_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/proxy/wire"
)

// Standby connections: a private side presents a token it reserved ahead of time (Engine.Reserve)
// and waits, parked under its operator; the operator's next client is relayed to it at once, with
// no notice. In these tests the test itself plays the private side.

// otherOperator reserves standby connections but announced nothing the tests' clients ask for.
const otherOperator = "someone.else"

// reserveOne reserves one standby token for op.
func reserveOne(t testing.TB, r *rig, op string) wire.Token {
	t.Helper()
	toks, _, err := r.eng.Reserve(op, 1, wire.SocketMode{})
	if err != nil {
		t.Fatalf("Reserve(%q, 1): %v", op, err)
	}
	if len(toks) != 1 {
		t.Fatalf("Reserve(%q, 1) returned %d tokens", op, len(toks))
	}
	return toks[0]
}

// parkedNow is the number of parked standby sockets.
func parkedNow(r *rig) int {
	p, _ := r.eng.Standby()
	return p
}

// wantParked waits until the engine holds n parked standby sockets.
func wantParked(t testing.TB, r *rig, n int) {
	t.Helper()
	waitFor(t, "parked standby sockets to be "+strconv.Itoa(n), func() bool { return parkedNow(r) == n })
}

// park presents tok on a new internal connection and waits until the engine has parked it
// (parked sockets grow by one); it returns the private side's end.
func park(t testing.TB, r *rig, tok wire.Token) net.Conn {
	t.Helper()
	before := parkedNow(r)
	c := presentToken(t, r, tok[:])
	wantParked(t, r, before+1)
	return c
}

// wantCounter waits until a counter the rig's stats map leaves out reaches want.
func wantCounter(t testing.TB, name string, load func() int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for load() != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := load(); got != want {
		t.Errorf("Stats.%s = %d, want %d", name, got, want)
	}
}

// wantStandbyStats checks the standby counters the rig's stats map leaves out.
func wantStandbyStats(t testing.TB, r *rig, parked, standbyPaired, gone int64) {
	t.Helper()
	s := r.eng.Stats()
	wantCounter(t, "Parked", s.Parked.Load, parked)
	wantCounter(t, "StandbyPaired", s.StandbyPaired.Load, standbyPaired)
	wantCounter(t, "StandbyGone", s.StandbyGone.Load, gone)
}

// noNotice asserts the engine has sent no notice so far.
func noNotice(t testing.TB, r *rig) {
	t.Helper()
	select {
	case n := <-r.noticeCh:
		t.Errorf("the engine sent a notice for %q by %q, want none", n.Domain, n.Operator)
	default:
	}
}

// servedByStandby connects a TLS client that must be relayed to a parked socket (the test has
// relayed it to the backend), not take the notice path, and echoes what through it.
func servedByStandby(t testing.TB, r *rig, what string) {
	t.Helper()
	client := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	select {
	case err := <-client.done:
		if err != nil {
			t.Fatalf("%s: client handshake: %v", what, err)
		}
	case n := <-r.noticeCh:
		t.Fatalf("%s: the client took the notice path (notice for %q by %q) with a live socket parked", what, n.Domain, n.Operator)
	case <-time.After(2 * patience):
		t.Fatalf("%s: client handshake: no result in time", what)
	}
	if err := echo(client.c, []byte(what)); err != nil {
		t.Errorf("%s: echo: %v", what, err)
	}
}

// standbyRig is a rig whose internal connections are only closed by the engine's judgement,
// never by the token deadline, and whose notices are held: a client that takes the notice path
// waits for the test.
func standbyRig(t testing.TB, tune func(*engine.Config)) *rig {
	t.Helper()
	r := newRig(t, func(c *engine.Config) {
		c.TokenTimeout = longPhase
		c.AcceptTimeout = longPhase
		if tune != nil {
			tune(c)
		}
	})
	r.holdNotices()
	return r
}

func TestStandbyServesTheNextClient(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	pub := park(t, r, reserveOne(t, r, operator))
	if err := r.relayToBackend(pub); err != nil {
		t.Fatal(err)
	}

	type result struct {
		c   *tls.Conn
		err error
	}
	w := &tap{}
	done := make(chan result, 1)
	go func() {
		c, err := dialTLS(r.cfg.PublicAddr, r.clientTC, w)
		done <- result{c, err}
	}()
	var client *tls.Conn
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("client through a standby connection: %v", res.err)
		}
		client = res.c
	case n := <-r.noticeCh:
		t.Fatalf("the client took the notice path (notice for %q by %q) with a standby socket parked", n.Domain, n.Operator)
	case <-time.After(2 * patience):
		t.Fatal("client handshake: no result in time")
	}
	defer client.Close()
	// The private side got exactly what the client sent, the ClientHello first (checked before
	// the echo, which would add to what the client put on the wire).
	checkReplay(t, r, w)
	if err := echo(client, []byte("through a standby connection")); err != nil {
		t.Errorf("echo through a standby connection: %v", err)
	}
	noNotice(t, r)
	if p, tok := r.eng.Standby(); p != 0 || tok != 0 {
		t.Errorf("Standby() = %d parked, %d tokens after the client took the socket, want 0 and 0", p, tok)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
	wantStandbyStats(t, r, 1, 1, 0)
}

func TestStandbyOnlyServesItsOperator(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)

	// No parked socket: the notice path.
	first := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	n := r.nextNotice(t)
	if n.Domain != domain || n.Operator != operator {
		t.Errorf("notice for %q by %q, want %q by %q", n.Domain, n.Operator, domain, operator)
	}
	pair(t, r, n.Token)
	wait(t, first.done, "first client's handshake")
	if err := echo(first.c, []byte("notice path")); err != nil {
		t.Errorf("first client: %v", err)
	}

	// Another operator's parked socket is not this operator's.
	other := park(t, r, reserveOne(t, r, otherOperator))
	second := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	n = r.nextNotice(t)
	if n.Domain != domain || n.Operator != operator {
		t.Errorf("notice for %q by %q, want %q by %q", n.Domain, n.Operator, domain, operator)
	}
	pair(t, r, n.Token)
	wait(t, second.done, "second client's handshake")
	if err := echo(second.c, []byte("notice path again")); err != nil {
		t.Errorf("second client: %v", err)
	}
	stillOpen(t, other, "another operator's parked socket")
	if p := parkedNow(r); p != 1 {
		t.Errorf("parked = %d, want 1 (the other operator's socket)", p)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 2, "Matched": 2, "Paired": 2})
	wantStandbyStats(t, r, 1, 0, 0)
}

func TestStandbyTokenWorksOnce(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	tok := reserveOne(t, r, operator)
	first := park(t, r, tok)

	refusedAtOnce(t, presentToken(t, r, tok[:]), "second use of a standby token")
	var unknown wire.Token
	_, _ = rand.Read(unknown[:])
	refusedAtOnce(t, presentToken(t, r, unknown[:]), "unknown token")

	stillOpen(t, first, "the socket parked with the token's first use")
	if p := parkedNow(r); p != 1 {
		t.Errorf("parked = %d, want 1", p)
	}
	wantStats(t, r.eng, map[string]int64{"BadTokens": 2})
	wantStandbyStats(t, r, 1, 0, 0)
}

func TestStandbyBytesAfterTokenCloseTheConnection(t *testing.T) {
	t.Parallel()
	t.Run("with the token", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, nil)
		tok := reserveOne(t, r, operator)
		// One write: token and garbage arrive together.
		refusedAtOnce(t, presentToken(t, r, append(tok[:], "garbage"...)), "standby token followed by garbage")
		if p := parkedNow(r); p != 0 {
			t.Errorf("parked = %d, want 0", p)
		}
		wantStats(t, r.eng, map[string]int64{"BadTokens": 1})
		wantStandbyStats(t, r, 0, 0, 0)
	})
	t.Run("once parked", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, nil)
		pub := park(t, r, reserveOne(t, r, operator))
		start := time.Now()
		if _, err := pub.Write([]byte("garbage")); err != nil {
			t.Fatal(err)
		}
		if res := awaitClose(pub, start, patience); !res.closed || res.got != 0 {
			t.Errorf("parked socket that spoke first: want a close without a byte, got %v", res)
		}
		wantParked(t, r, 0)
		wantStandbyStats(t, r, 1, 0, 1)
	})
}

func TestStandbyClosedByItsPrivateSideIsNotUsed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tick time.Duration
	}{
		{"swept or taken", 0}, // the rig's short tick: whichever comes first
		{"taken", longPhase},  // no sweep in the test's time: only the take can see it
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := standbyRig(t, func(c *engine.Config) {
				if tc.tick > 0 {
					c.Tick = tc.tick
				}
			})
			pub := park(t, r, reserveOne(t, r, operator))
			pub.Close()

			client := startTLS(t, r.cfg.PublicAddr, r.clientTC)
			n := r.nextNotice(t)
			if n.Domain != domain || n.Operator != operator {
				t.Errorf("notice for %q by %q, want %q by %q", n.Domain, n.Operator, domain, operator)
			}
			wantParked(t, r, 0)
			pair(t, r, n.Token)
			wait(t, client.done, "client handshake")
			if err := echo(client.c, []byte("notice path")); err != nil {
				t.Errorf("client: %v", err)
			}
			wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
			wantStandbyStats(t, r, 1, 0, 1)
		})
	}
	// A closed socket ahead of a live one is passed over: the live one serves the client.
	t.Run("a live one behind it serves", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, nil)
		dead := park(t, r, reserveOne(t, r, operator))
		live := park(t, r, reserveOne(t, r, operator))
		dead.Close()
		if err := r.relayToBackend(live); err != nil {
			t.Fatal(err)
		}
		servedByStandby(t, r, "the live standby socket")
		noNotice(t, r)
		wantParked(t, r, 0)
		wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
		wantStandbyStats(t, r, 2, 1, 1)
	})
}

func TestStandbyTTLClosesAnUnusedSocket(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	r := standbyRig(t, func(c *engine.Config) {
		c.StandbyTTL = ttl
		c.Tick = 20 * time.Millisecond
	})
	start := time.Now()
	pub := park(t, r, reserveOne(t, r, operator))
	res := awaitClose(pub, start, patience)
	if !res.closed || res.got != 0 {
		t.Fatalf("parked socket past StandbyTTL: want a close without a byte, got %v", res)
	}
	if res.elapsed < ttl {
		t.Errorf("parked socket closed after %v, before the %v StandbyTTL", res.elapsed, ttl)
	}
	wantParked(t, r, 0)
	wantStats(t, r.eng, nil)
	wantStandbyStats(t, r, 1, 0, 0)
}

func TestStandbyTokenTTL(t *testing.T) {
	t.Parallel()
	const ttl = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		tick time.Duration
	}{
		{"swept or claimed", 0}, // the rig's short tick: the sweep may forget it first
		{"claimed", longPhase},  // no sweep in the test's time: the claim must see the expiry
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := standbyRig(t, func(c *engine.Config) {
				c.StandbyTokenTTL = ttl
				if tc.tick > 0 {
					c.Tick = tc.tick
				}
			})
			toks, until, err := r.eng.Reserve(operator, 1, wire.SocketMode{})
			if err != nil || len(toks) != 1 {
				t.Fatalf("Reserve: %d tokens, %v", len(toks), err)
			}
			sleepUntil(until.Add(10 * time.Millisecond))
			refusedAtOnce(t, presentToken(t, r, toks[0][:]), "expired standby token")
			if p := parkedNow(r); p != 0 {
				t.Errorf("parked = %d, want 0", p)
			}
			wantStats(t, r.eng, map[string]int64{"BadTokens": 1})
			wantStandbyStats(t, r, 0, 0, 0)
		})
	}
}

func TestStandbyCaps(t *testing.T) {
	t.Parallel()
	t.Run("MaxStandby", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, func(c *engine.Config) { c.MaxStandby = 3 })
		firstBatch, _, err := r.eng.Reserve(operator, 10, wire.SocketMode{})
		if err != nil {
			t.Fatal(err)
		}
		if len(firstBatch) != 3 {
			t.Fatalf("Reserve(10) with MaxStandby 3 returned %d tokens, want 3", len(firstBatch))
		}
		secondBatch, _, err := r.eng.Reserve(operator, 3, wire.SocketMode{})
		if err != nil {
			t.Fatal(err)
		}
		if len(secondBatch) != 3 {
			t.Fatalf("second Reserve(3) returned %d tokens, want 3", len(secondBatch))
		}
		for _, a := range firstBatch {
			for _, b := range secondBatch {
				if bytes.Equal(a[:], b[:]) {
					t.Fatal("a token was handed out twice")
				}
			}
		}
		if _, tok := r.eng.Standby(); tok != 3 {
			t.Errorf("outstanding tokens = %d, want 3", tok)
		}
		refusedAtOnce(t, presentToken(t, r, firstBatch[0][:]), "evicted first-batch token")
		pub := park(t, r, secondBatch[0])
		stillOpen(t, pub, "parked second-batch token")
		if p, tok := r.eng.Standby(); p != 1 || tok != 2 {
			t.Errorf("Standby() = %d parked, %d tokens, want 1 and 2", p, tok)
		}
		wantStats(t, r.eng, map[string]int64{"BadTokens": 1})
		wantStandbyStats(t, r, 1, 0, 0)
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, func(c *engine.Config) { c.MaxStandby = -1 })
		toks, _, err := r.eng.Reserve(operator, 1, wire.SocketMode{})
		if !errors.Is(err, engine.ErrStandbyOff) {
			t.Errorf("Reserve with MaxStandby -1: err %v, want ErrStandbyOff", err)
		}
		if len(toks) != 0 {
			t.Errorf("Reserve with MaxStandby -1 returned %d tokens", len(toks))
		}
	})
}

func TestStandbyClosedByStop(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	pub := park(t, r, reserveOne(t, r, operator))
	r.close()
	if res := awaitClose(pub, time.Now(), patience); !res.closed || res.got != 0 {
		t.Errorf("parked socket after Stop: want a close without a byte, got %v", res)
	}
	if p, tok := r.eng.Standby(); p != 0 || tok != 0 {
		t.Errorf("Standby() = %d parked, %d tokens after Stop, want 0 and 0", p, tok)
	}
}

// TestStandbyRefusedOnceStopping: a stopping engine hands out no token and files no hash (they
// would die with it): a private proxy asking then is told to retry, instead of dialing sockets
// that nobody parks and mistaking the new instance's refusal of them for a policy.
func TestStandbyRefusedOnceStopping(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	r.close()
	if toks, _, err := r.eng.Reserve(operator, 4, wire.SocketMode{}); !errors.Is(err, engine.ErrStopping) || len(toks) != 0 {
		t.Errorf("Reserve after Stop: %d tokens, err %v; want none and ErrStopping", len(toks), err)
	}
	hash := engine.HashToken(wire.Token{1})
	if err := r.eng.AcceptTokens(operator, []wire.TokenHash{hash}, time.Now().Add(time.Minute), wire.SocketMode{}); !errors.Is(err, engine.ErrStopping) {
		t.Errorf("AcceptTokens after Stop: err %v, want ErrStopping", err)
	}
}

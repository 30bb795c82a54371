package engine_test

import (
	"crypto/rand"
	"net"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/proxy/wire"
)

// The internal port: a private side presents the 32-byte token of a waiting client, exactly once,
// in time, and says nothing else before the pair is made. In these tests the test itself plays
// the private side.

// pair presents tok on a new internal connection and relays that connection to the backend.
func pair(t testing.TB, r *rig, tok wire.Token) {
	t.Helper()
	if err := r.dialBack(tok); err != nil {
		t.Fatalf("private side: %v", err)
	}
}

// presentToken dials the internal port and writes b.
func presentToken(t testing.TB, r *rig, b []byte) net.Conn {
	t.Helper()
	c := dial(t, r.cfg.InternalAddr)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenWorksOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) { c.TokenTimeout = longPhase })
	r.holdNotices()
	client := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	n := r.nextNotice(t)
	if n.Domain != domain || n.Operator != operator {
		t.Errorf("notice for %q by %q, want %q by %q", n.Domain, n.Operator, domain, operator)
	}
	pair(t, r, n.Token)
	wait(t, client.done, "client handshake")

	again := presentToken(t, r, n.Token[:])
	refusedAtOnce(t, again, "second use of a token")
	if err := echo(client.c, []byte("the first pair is untouched")); err != nil {
		t.Errorf("first pair after the replayed token: %v", err)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1, "BadTokens": 1})
}

func TestUnknownTokenIsClosedSilently(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) { c.TokenTimeout = longPhase })
	r.holdNotices()
	client := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	n := r.nextNotice(t)

	var tok wire.Token
	_, _ = rand.Read(tok[:])
	refusedAtOnce(t, presentToken(t, r, tok[:]), "unknown token")
	if p := r.eng.Pending(); p != 1 {
		t.Errorf("Pending = %d after an unknown token, want 1 (the waiting client)", p)
	}
	// The waiting client is unaffected and pairs with its own token.
	pair(t, r, n.Token)
	wait(t, client.done, "client handshake")
	if err := echo(client.c, []byte("ok")); err != nil {
		t.Error(err)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1, "BadTokens": 1})
}

func TestShortTokenClosedAtTokenTimeout(t *testing.T) {
	t.Parallel()
	const tokenTimeout = 300 * time.Millisecond
	r := newRig(t, func(c *engine.Config) { c.TokenTimeout = tokenTimeout })
	r.holdNotices()
	start := time.Now()
	c := presentToken(t, r, make([]byte, wire.TokenSize-1))
	res := awaitClose(c, start, 5*time.Second)
	if !res.closed || res.got != 0 {
		t.Fatalf("want a close without a byte within 5 s, got %v", res)
	}
	if res.elapsed < tokenTimeout {
		t.Errorf("closed after %v, before the %v token deadline", res.elapsed, tokenTimeout)
	}
	wantStats(t, r.eng, map[string]int64{"BadTokens": 1})
}

// A token split over two writes is still a token.
func TestTokenInTwoPieces(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) { c.TokenTimeout = longPhase })
	r.holdNotices()
	client := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	n := r.nextNotice(t)
	pub := presentToken(t, r, n.Token[:10])
	time.Sleep(20 * time.Millisecond) // let the first piece arrive on its own
	if _, err := pub.Write(n.Token[10:]); err != nil {
		t.Fatal(err)
	}
	if err := r.relayToBackend(pub); err != nil {
		t.Fatal(err)
	}
	wait(t, client.done, "client handshake")
	if err := echo(client.c, []byte("ok")); err != nil {
		t.Error(err)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
}

func TestTokenAfterAcceptTimeoutIsRefused(t *testing.T) {
	t.Parallel()
	const acceptTimeout = 300 * time.Millisecond
	r := newRig(t, func(c *engine.Config) {
		c.AcceptTimeout = acceptTimeout
		c.TokenTimeout = longPhase
	})
	r.holdNotices()
	start := time.Now()
	client := dial(t, r.cfg.PublicAddr)
	if _, err := client.Write(captureHello(t, r.clientTC)); err != nil {
		t.Fatal(err)
	}
	n := r.nextNotice(t)
	res := awaitClose(client, start, 5*time.Second)
	if !res.closed || res.got != 0 {
		t.Fatalf("waiting client: want a close without a byte within 5 s, got %v", res)
	}
	if res.elapsed < acceptTimeout {
		t.Errorf("waiting client closed after %v, before the %v accept deadline", res.elapsed, acceptTimeout)
	}
	refusedAtOnce(t, presentToken(t, r, n.Token[:]), "token of an expired client")
	if n := r.accepts.Load(); n != 0 {
		t.Errorf("backend accepted %d connections, want 0", n)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Expired": 1, "BadTokens": 1})
}

func TestBytesAfterTokenCloseTheInternalConnection(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) { c.TokenTimeout = longPhase })
	r.holdNotices()
	client := dial(t, r.cfg.PublicAddr)
	if _, err := client.Write(captureHello(t, r.clientTC)); err != nil {
		t.Fatal(err)
	}
	n := r.nextNotice(t)
	// One write: token and garbage arrive together, before any pairing.
	refusedAtOnce(t, presentToken(t, r, append(n.Token[:], "garbage"...)), "token followed by garbage")
	if n := r.accepts.Load(); n != 0 {
		t.Errorf("backend accepted %d connections, want 0", n)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "BadTokens": 1})
}

func TestCancelClosesTheWaitingClient(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.AcceptTimeout = longPhase
		c.TokenTimeout = longPhase
	})
	r.holdNotices()
	client := dial(t, r.cfg.PublicAddr)
	if _, err := client.Write(captureHello(t, r.clientTC)); err != nil {
		t.Fatal(err)
	}
	n := r.nextNotice(t)
	var other wire.Token
	other[0] = 1
	r.eng.Cancel(other, "unknown token: nothing happens")
	stillOpen(t, client, "client after cancelling another token")

	r.eng.Cancel(n.Token, "test cancels")
	refusedAtOnce(t, client, "cancelled client")
	if p := r.eng.Pending(); p != 0 {
		t.Errorf("Pending = %d after Cancel, want 0", p)
	}
	refusedAtOnce(t, presentToken(t, r, n.Token[:]), "token of a cancelled client")
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "NotifyFailed": 1, "BadTokens": 1})
}

// A client that closes while it waits frees its token.
func TestClientGoneWhileWaiting(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) { c.TokenTimeout = longPhase })
	r.holdNotices()
	client := dial(t, r.cfg.PublicAddr)
	if _, err := client.Write(captureHello(t, r.clientTC)); err != nil {
		t.Fatal(err)
	}
	n := r.nextNotice(t)
	client.Close()
	waitFor(t, "the pending table to drop the client", func() bool { return r.eng.Pending() == 0 })
	refusedAtOnce(t, presentToken(t, r, n.Token[:]), "token of a client that left")
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "BadTokens": 1})
}

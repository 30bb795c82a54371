package engine_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/engine/relay"
	"epsproxy/internal/testnet"
	"epsproxy/matcher"
)

// Bytes a client sends after its hello and before its private side arrives (TLS early data) are
// kept and replayed after the hello, in order; past MaxHello the client is cut off.

// rawBackend makes the rig's backend read want bytes, report them, and answer with ack; the
// result arrives on the returned channel.
func rawBackend(r *rig, want int) <-chan []byte {
	got := make(chan []byte, 1)
	r.setBackend(func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(patience))
		b := make([]byte, want)
		n, _ := io.ReadFull(c, b)
		got <- b[:n]
		_, _ = c.Write(ack)
	})
	return got
}

func TestEarlyDataIsReplayedAfterTheHello(t *testing.T) {
	cases := []struct {
		name     string
		early    int  // bytes sent after the hello, before the pair is made
		together bool // sent in the hello's write rather than after the notice
	}{
		{name: "in the hello's segment", early: 1000, together: true},
		{name: "while waiting", early: 1000},
		{name: "up to the default MaxHello", early: engine.DefaultMaxHello - 2048},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkEarlyReplay(t, 0, tc.early, tc.together)
		})
	}
}

// MaxHello is a promise: what a client sends within it is replayed. A value the relay cannot
// replay (more than relay.MaxPrefix) must be refused by New, not accepted and then broken at the
// handoff.
func TestMaxHelloIsReplayableOrRefused(t *testing.T) {
	t.Parallel()
	const maxHello = 2 * relay.MaxPrefix
	rl, err := relay.New(relay.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	cfg := engine.Config{PublicAddr: testnet.FreeAddr(t), InternalAddr: testnet.FreeAddr(t), MaxHello: maxHello}
	if _, err := engine.New(cfg, matcher.New(matcher.Options{}), func(engine.Notice) error { return nil }, rl, logger()); err != nil {
		t.Logf("New refuses MaxHello %d: %v", maxHello, err)
		return
	}
	checkEarlyReplay(t, maxHello, relay.MaxPrefix+16<<10, false)
}

// checkEarlyReplay sends a hello and early bytes of early data (in the hello's write if
// together), pairs the client, and checks that the backend gets both, in order, unchanged.
func checkEarlyReplay(t *testing.T, maxHello, early int, together bool) {
	t.Helper()
	r := newRig(t, func(c *engine.Config) {
		c.AcceptTimeout = longPhase
		c.MaxHello = maxHello
	})
	r.holdNotices()
	hello := captureHello(t, r.clientTC)
	data := bytes.Repeat([]byte("early data "), early/11+1)[:early]
	want := append(bytes.Clone(hello), data...)
	got := rawBackend(r, len(want))

	c := dial(t, r.cfg.PublicAddr)
	first := hello
	if together {
		first = want
	}
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	n := r.nextNotice(t)
	if !together {
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		// Nothing tells a client its early data is in; give it time to be read into the
		// engine rather than wait in the socket (either way it must be replayed).
		time.Sleep(50 * time.Millisecond)
	}
	pair(t, r, n.Token)
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("backend got other bytes: %s", firstDiff(b, want))
		}
	case <-time.After(patience):
		t.Fatal("backend got nothing")
	}
	_ = c.SetReadDeadline(time.Now().Add(patience))
	answer := make([]byte, len(ack))
	if _, err := io.ReadFull(c, answer); err != nil || !bytes.Equal(answer, ack) {
		t.Fatalf("client read %q, %v; want the backend's answer", answer, err)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
}

func TestEarlyDataOverMaxHelloCutsTheClientOff(t *testing.T) {
	t.Parallel()
	const maxHello = 8 << 10
	r := newRig(t, func(c *engine.Config) {
		c.AcceptTimeout = longPhase
		c.TokenTimeout = longPhase
		c.MaxHello = maxHello
	})
	r.holdNotices()
	c := dial(t, r.cfg.PublicAddr)
	if _, err := c.Write(captureHello(t, r.clientTC)); err != nil {
		t.Fatal(err)
	}
	n := r.nextNotice(t)
	// The engine may cut the client off before it has written everything.
	_, _ = c.Write(make([]byte, maxHello))
	refusedAtOnce(t, c, fmt.Sprintf("client over MaxHello (%d bytes)", maxHello))
	waitFor(t, "the token to be dropped", func() bool { return r.eng.Pending() == 0 })
	refusedAtOnce(t, presentToken(t, r, n.Token[:]), "token of a client that was cut off")
	if n := r.accepts.Load(); n != 0 {
		t.Errorf("backend accepted %d connections, want 0", n)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "BadTokens": 1})
}

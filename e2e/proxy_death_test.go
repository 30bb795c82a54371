package e2e

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// One proxy dies (SIGKILL) while a client streams a request body through the chain: the client
// sees its connection end within a few seconds instead of hanging, and the surviving proxy gives
// back every descriptor and goroutine the connection cost it. First the private proxy dies (the
// issue's case, watched at the public proxy), then, after it is back, the public proxy (watched
// at the private proxy).
func TestProxyKilledMidTransfer(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	withAdmin(t, c, chain.Public, chain.Private)
	startAll(t, c)
	for _, round := range []struct{ victim, survivor string }{
		{chain.Private, chain.Public},
		{chain.Public, chain.Private},
	} {
		// Warm the EPS links and settle, then take the baseline.
		cl := c.HTTPClient(c.Ports.PublicTLS, false)
		for range 3 {
			if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
				t.Fatalf("warm-up GET: %d %v", code, err)
			}
		}
		base := settledStats(t, c, round.survivor)
		streamAndKill(t, c, round.victim, round.survivor)
		// Everything the connection held at the survivor is given back.
		waitBaseline(t, c, round.survivor, base, 10*time.Second, "Pairs", "Pending", "HelloConns")
		if err := c.Start(round.victim); err != nil {
			t.Fatal(err)
		}
		waitGet(t, c, chain.Domain)
	}
}

// streamAndKill streams a request body through the chain, kills victim once the survivor relays
// the stream, and checks that the client's connection ends.
func streamAndKill(t *testing.T, c *chain.Chain, victim, survivor string) {
	t.Helper()
	conn, err := dialClient(c, chain.Domain, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A chunked POST whose body never ends: the internal server waits for the rest, so bytes
	// flow only towards it until something breaks.
	head := "POST /jsonrpc HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := fmt.Fprintf(conn, head, chain.Domain); err != nil {
		t.Fatal(err)
	}
	var sent, got atomic.Int64
	stopWriting := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		chunk := fmt.Appendf(nil, "%x\r\n%s\r\n", 2048, bytes.Repeat([]byte{' '}, 2048))
		for {
			select {
			case <-stopWriting:
				return
			case <-time.After(10 * time.Millisecond):
			}
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(chunk); err != nil {
				return
			}
			sent.Add(2048)
		}
	}()
	readDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		for {
			n, err := conn.Read(buf)
			got.Add(int64(n))
			if err != nil {
				readDone <- err
				return
			}
		}
	}()
	defer func() { close(stopWriting); <-writerDone }()

	// Wait until the survivor relays the stream and bytes went through, then kill.
	deadline := time.Now().Add(10 * time.Second)
	for adminStats(t, c, survivor).Counters["Pairs"] != 1 || sent.Load() < 64<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not start: %s pairs %d, %d bytes sent", survivor, adminStats(t, c, survivor).Counters["Pairs"], sent.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := sent.Load()
	killed := time.Now()
	c.Kill(victim)
	select {
	case err := <-readDone:
		t.Logf("%s killed: the client saw its connection end %v later (%v); %d bytes sent before the kill, %d received",
			victim, time.Since(killed).Round(time.Millisecond), err, before, got.Load())
		if got.Load() != 0 {
			t.Errorf("the client received %d bytes although the internal server never answered", got.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s killed: the client's connection was still open 5 s later (%d bytes sent)", victim, sent.Load())
	}
}

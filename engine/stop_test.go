package engine_test

import (
	"context"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"epsproxy/engine"
)

// Stop closes everything gnet still holds (clients in the hello and waiting phases, internal
// connections without their token, the listeners), leaves relayed pairs to the relay, and once
// the relay is closed too, no goroutine or descriptor is left behind.

// fdSlack is how many descriptors a test tolerates above its baseline for the runtime's own.
const fdSlack = 3

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Not parallel: it counts the process's goroutines and descriptors.
func TestStopClosesWaitingClientsAndLeaksNothing(t *testing.T) {
	// Whatever a first engine starts once per process (the runtime's poller, pools) belongs in
	// the baseline.
	warm := newRig(t, nil)
	if err := goodClient(warm); err != nil {
		t.Fatal(err)
	}
	warm.close()
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	r := newRig(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.AcceptTimeout = longPhase
		c.TokenTimeout = longPhase
	})
	r.holdNotices()
	hello := captureHello(t, r.clientTC)
	// First, so that gnet has long registered it when Stop comes (TestStopWhileClientsConnect
	// is about connections that arrive during Stop).
	halfToken := presentToken(t, r, make([]byte, 10))

	paired := startTLS(t, r.cfg.PublicAddr, r.clientTC)
	pair(t, r, r.nextNotice(t).Token)
	wait(t, paired.done, "paired client's handshake")

	inHello := partialClients(t, r, 3, hello)
	var waiting []net.Conn
	for range 2 {
		c := dial(t, r.cfg.PublicAddr)
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		r.nextNotice(t)
		waiting = append(waiting, c)
	}
	waitFor(t, "clients in every phase", func() bool { return r.eng.HelloConns() == 3 && r.eng.Pending() == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := r.eng.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-r.eng.Done():
	case <-time.After(patience):
		t.Fatal("Run did not return after Stop")
	}
	for _, c := range inHello {
		refusedAtOnce(t, c, "client in the hello phase at Stop")
	}
	for _, c := range waiting {
		refusedAtOnce(t, c, "waiting client at Stop")
	}
	refusedAtOnce(t, halfToken, "internal connection without its token at Stop")
	for _, addr := range []string{r.cfg.PublicAddr, r.cfg.InternalAddr} {
		if c, err := net.DialTimeout("tcp", addr, patience); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
	if err := echo(paired.c, []byte("relayed pairs are the relay's")); err != nil {
		t.Errorf("relayed pair after Stop: %v", err)
	}

	paired.c.Close()
	r.close()
	for _, cs := range [][]net.Conn{inHello, waiting, {halfToken}} {
		for _, c := range cs {
			c.Close()
		}
	}
	var g, fds int
	deadline := time.Now().Add(patience)
	for {
		g, fds = runtime.NumGoroutine(), openFDs(t)
		if (g <= baseG+goroutineSlack && fds <= baseFD+fdSlack) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("goroutines %d -> %d, descriptors %d -> %d", baseG, g, baseFD, fds)
	if g > baseG+goroutineSlack {
		t.Errorf("%d goroutines after Stop and Close, %d before the engine", g, baseG)
	}
	if fds > baseFD+fdSlack {
		t.Errorf("%d descriptors open after Stop and Close, %d before the engine", fds, baseFD)
	}
}

// Clients that connect while Stop runs are closed too: none is left accepted but unserved, holding
// a descriptor and a client that waits forever. Each sends the start of a hello, as any client
// does at once: one that sends nothing is never accepted (TCP_DEFER_ACCEPT) and holds nothing of
// the engine. Not parallel: it counts descriptors.
func TestStopWhileClientsConnect(t *testing.T) {
	const (
		rounds   = 3   // the race is lost often, not always
		maxConns = 300 // per round
	)
	for round := range rounds {
		baseFD := openFDs(t)
		r := newRig(t, nil)
		var (
			mu    sync.Mutex
			conns []net.Conn
			wg    sync.WaitGroup
		)
		dialled := make(chan struct{})
		var once sync.Once
		for range 2 {
			wg.Go(func() {
				for {
					c, err := net.DialTimeout("tcp", r.cfg.PublicAddr, patience)
					if err != nil {
						return // the listener is gone
					}
					_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // a record header, no more
					mu.Lock()
					conns = append(conns, c)
					n := len(conns)
					mu.Unlock()
					if n >= 50 {
						once.Do(func() { close(dialled) })
					}
					if n >= maxConns {
						return
					}
				}
			})
		}
		select {
		case <-dialled:
		case <-time.After(patience):
			t.Fatal("could not connect")
		}
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		err := r.eng.Stop(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()

		results := make([]closeResult, len(conns))
		var rg sync.WaitGroup
		for i, c := range conns {
			rg.Go(func() { results[i] = awaitClose(c, time.Now(), 3*time.Second) })
		}
		rg.Wait()
		open := 0
		for _, res := range results {
			if !res.closed {
				open++
			}
		}
		for _, c := range conns {
			c.Close()
		}
		r.close()
		if open > 0 {
			t.Errorf("round %d: %d of %d clients that connected around Stop were never closed", round+1, open, len(conns))
		}
		var fds int
		deadline := time.Now().Add(2 * time.Second)
		for fds = openFDs(t); fds > baseFD+fdSlack && time.Now().Before(deadline); fds = openFDs(t) {
			time.Sleep(20 * time.Millisecond)
		}
		if fds > baseFD+fdSlack {
			t.Errorf("round %d: %d descriptors open after Stop and Close, %d before", round+1, fds, baseFD)
		}
		if t.Failed() {
			return
		}
	}
}

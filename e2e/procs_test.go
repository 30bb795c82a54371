package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// The public proxy runs with as many Ps as gnet loops while it is quiet, with more while clients
// keep it busy, and with the first number again once they stop (internal/daemon.Governor); at
// rest the governor waits for the next client: what an operator reads in /debug/stats
// (process.gomaxprocs, governor).
func TestPublicProxyProcsFollowLoad(t *testing.T) {
	c := newChain(t)
	// The governor steps aside for a GOMAXPROCS from the environment: make sure none is inherited.
	c.Env[chain.Public] = append(c.Env[chain.Public], "GOMAXPROCS=")
	withAdmin(t, c, chain.Public)
	startAll(t, c)
	waitGet(t, c, chain.Domain)
	procs := func() int { return adminStats(t, c, chain.Public).Process.GOMAXPROCS }
	governor := func() string {
		var st struct{ Governor string }
		if err := json.Unmarshal(adminStats(t, c, chain.Public).Raw, &st); err != nil {
			t.Fatal(err)
		}
		return st.Governor
	}

	// At rest: the same number for two seconds in a row (the governor goes quiet after one
	// second of calm, so start-up's TLS handshakes with the node are behind us).
	quiet, since := procs(), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Since(since) < 2*time.Second; time.Sleep(100 * time.Millisecond) {
		if n := procs(); n != quiet {
			quiet, since = n, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the public proxy's GOMAXPROCS did not settle within 30 s at rest (last %d)", quiet)
		}
	}
	if quiet < 1 {
		t.Fatalf("GOMAXPROCS %d at rest", quiet)
	}
	// Resting: with nothing to do the governor stops measuring, so only the clients' connections
	// (Governor.Wake on every accept) can make it busy below. Read every half second, which costs
	// far less than the 1% of a core it rests under.
	for deadline := time.Now().Add(30 * time.Second); governor() != "resting"; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the public proxy's governor did not rest within 30 s at rest (%q)", governor())
		}
	}

	// Busy: 16 clients opening one connection after another, for at most 30 s.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ld := startLoad(ctx, c, 16)
	busy := quiet
	for ctx.Err() == nil && busy <= quiet {
		time.Sleep(50 * time.Millisecond)
		busy = procs()
	}
	cancel()
	ld.wait()
	if busy <= quiet {
		t.Fatalf("after 30 s of 16 clients (%d requests, %d failed) the public proxy still had GOMAXPROCS %d, as at rest",
			ld.ok.Load(), ld.failed.Load(), busy)
	}
	if ld.failed.Load() > 0 {
		t.Errorf("%d of %d requests failed under load", ld.failed.Load(), ld.ok.Load()+ld.failed.Load())
	}

	// Quiet again.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n := procs()
		if n == quiet {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the load stopped the public proxy still had GOMAXPROCS %d (%d at rest, %d busy)", n, quiet, busy)
		}
	}
	t.Logf("GOMAXPROCS %d at rest, %d under load (%d requests), %d again once quiet", quiet, busy, ld.ok.Load(), quiet)
}

package e2e

import (
	"context"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// Restarting any process of the chain while clients keep coming loses no announcement: after
// each restart the chain serves again (requests in flight during the restart may fail, and are
// only counted), and at the end every request succeeds.
func TestRestartUnderLoad(t *testing.T) {
	c := newChain(t)
	startAll(t, c)

	ctx, cancel := context.WithCancel(context.Background())
	ld := startLoad(ctx, c, 8)
	for _, name := range []string{chain.Public, chain.Private, chain.PublicEPS, chain.PrivateEPS} {
		time.Sleep(500 * time.Millisecond) // let load run against the current process
		before := ld.ok.Load()
		start := time.Now()
		if err := c.Stop(name, 15*time.Second); err != nil {
			t.Fatalf("stopping %s under load: %v", name, err)
		}
		if err := c.Start(name); err != nil {
			t.Fatal(err)
		}
		waitGet(t, c, chain.Domain)
		t.Logf("%s restarted under load: serving again %v after the SIGTERM (%d requests succeeded meanwhile, %d failed in all so far)",
			name, time.Since(start).Round(time.Millisecond), ld.ok.Load()-before, ld.failed.Load())
	}
	cancel()
	ld.wait()
	// Quiet again: every request succeeds.
	cl := c.HTTPClient(c.Ports.PublicTLS, false)
	for i := range 50 {
		if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
			t.Fatalf("request %d after the restarts: %d %v", i, code, err)
		}
	}
	t.Logf("under load: %d requests succeeded, %d failed around the four restarts", ld.ok.Load(), ld.failed.Load())
}

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// An EPS node goes down (first the private side's, then the public side's) while the private proxy
// uses dial-backs only (standby: -1): new clients are closed promptly, well inside accept_timeout
// (10 s), while a connection already relaying keeps working; when the node comes back, new
// connections work again without restarting a proxy, so both proxies' EPS clients reconnect by
// themselves.
func TestEPSNodeOutage(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	overlayRole(t, c, "private-proxy-1", "private: {standby: -1}\n")
	startAll(t, c)
	if err := c.Start(chain.OtherEPS); err != nil {
		t.Fatal(err)
	}
	k := openKeepAlive(t, c)
	k.mustGet(t, "before the outage")

	for _, node := range []string{chain.PrivateEPS, chain.PublicEPS} {
		if err := c.Stop(node, 10*time.Second); err != nil {
			t.Fatalf("stopping %s: %v", node, err)
		}
		for i := range 3 {
			elapsed, err := handshakeFails(c, 15*time.Second)
			if err == nil {
				t.Fatalf("%s down: a new client completed its TLS handshake", node)
			}
			t.Logf("%s down: new client %d refused after %v (%v)", node, i, elapsed.Round(time.Millisecond), err)
			if elapsed > 5*time.Second {
				t.Errorf("%s down: a new client waited %v before it was closed; want well inside accept_timeout (10 s)", node, elapsed)
			}
			code, body, err := k.do(fmt.Sprintf(`{"during": %q, "i": %d}`, node, i))
			if err != nil || code != 200 || body != fmt.Sprintf(`{"during": %q, "i": %d}`, node, i) {
				t.Fatalf("%s down: the relaying keep-alive connection failed: %d %q %v", node, code, body, err)
			}
		}
		back := time.Now()
		if err := c.Start(node); err != nil {
			t.Fatal(err)
		}
		waitGet(t, c, chain.Domain)
		t.Logf("%s back: new connections work again %v after its restart", node, time.Since(back).Round(time.Millisecond))
		k.mustGet(t, "after "+node+" came back")
	}

	// The private proxy's own EPS client reconnected too: a name another operator adds now is
	// announced by the private proxy through its (restarted) node to the public proxy.
	const api = "api.internal-server.local"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out string
	var err error
	for ctx.Err() == nil {
		out, err = c.Call(ctx, chain.OtherEPS, "private-proxy-1.ga.announceConnection", `{"domain": "`+api+`", "proxy": "public-proxy-1.ga"}`)
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // other-eps reconnects to the restarted private node
	}
	if err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("announceConnection after the outages: %v %s", err, out)
	}
	waitGet(t, c, api)
}

// With standby connections (the default) the private proxy holds sockets at the public proxy and
// a stock of tokens, so new clients keep getting through while both EPS nodes are down, each
// relayed to a standby socket, and the private proxy keeps replacing the sockets it used.
func TestStandbyConnectionsCarryClientsThroughAnEPSOutage(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	withAdmin(t, c, chain.Public)
	overlayRole(t, c, "private-proxy-1", "private: {standby: 4}\n")
	startAll(t, c)
	waitParked(t, c, 4)
	before := adminStats(t, c, chain.Public)
	for _, node := range []string{chain.PrivateEPS, chain.PublicEPS} {
		if err := c.Stop(node, 10*time.Second); err != nil {
			t.Fatalf("stopping %s: %v", node, err)
		}
	}
	// More clients than standby sockets, one after another: each used socket is replaced with a
	// token from the stock, without EPS.
	cl := c.HTTPClient(c.Ports.PublicTLS, false)
	for i := range 12 {
		code, body, err := get(cl, chain.Domain)
		if err != nil || code != 200 || !strings.Contains(body, "success") {
			t.Fatalf("EPS down: client %d: %d %q %v", i, code, body, err)
		}
		waitParked(t, c, 1)
	}
	after := adminStats(t, c, chain.Public)
	if got := after.Counters["StandbyPaired"] - before.Counters["StandbyPaired"]; got != 12 {
		t.Errorf("clients relayed to standby sockets during the outage: %d, want 12", got)
	}
	if got := after.Counters["NotifyFailed"] - before.Counters["NotifyFailed"]; got != 0 {
		t.Errorf("clients that needed an EPS call during the outage: %d, want 0", got)
	}
}

// waitParked waits until the public proxy holds at least n parked standby sockets.
func waitParked(t *testing.T, c *chain.Chain, n int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.Stats(ctx, chain.Public) // fails while the proxy (re)starts
		cancel()
		if err == nil && st.Counters["StandbyParked"] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the public proxy parked %d standby sockets in 15 s, want %d (%v)", st.Counters["StandbyParked"], n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A restarted public proxy has forgotten the tokens and parked sockets of the old one: the private
// proxy notices (its sockets close, its stocked tokens are refused), reserves new tokens and parks
// standby sockets again, so clients go back to the fast path by themselves, and soon: with the
// default pool of 64 sockets, every one of which fails while the public proxy is down, the pool
// pauses for the first backoff step (one second), not once per socket up to the longest (30 s,
// as it did), and a stock the old instance had accepted is replaced at once instead of after
// another pause. Three restarts in a row, each back within standbyBack of the new instance
// answering (1 to 2 s here; it was 27 to 59 s).
func TestStandbyConnectionsComeBackAfterAPublicProxyRestart(t *testing.T) {
	t.Parallel()
	const standbyBack = 10 * time.Second
	c := newChain(t)
	withAdmin(t, c, chain.Public)
	startAll(t, c)
	waitParked(t, c, 64)
	for round := 1; round <= 3; round++ {
		if err := c.Stop(chain.Public, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(chain.Public); err != nil {
			t.Fatal(err)
		}
		ready := waitAdmin(t, c, chain.Public)
		waitParked(t, c, 1)
		if back := time.Since(ready); back > standbyBack {
			t.Fatalf("round %d: the first standby socket was parked %v after the public proxy answered, want within %v",
				round, back.Round(time.Millisecond), standbyBack)
		}
		waitParked(t, c, 64)
		before := adminStats(t, c, chain.Public)
		if code, _, err := get(c.HTTPClient(c.Ports.PublicTLS, false), chain.Domain); err != nil || code != 200 {
			t.Fatalf("round %d, after the restart: %d %v", round, code, err)
		}
		after := adminStats(t, c, chain.Public)
		if got := after.Counters["StandbyPaired"] - before.Counters["StandbyPaired"]; got != 1 {
			t.Errorf("round %d: the client after the restart was not relayed to a standby socket (StandbyPaired +%d)", round, got)
		}
	}
}

// waitAdmin waits until name's admin listener answers (a process just started) and returns when.
func waitAdmin(t *testing.T, c *chain.Chain, name string) time.Time {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Stats(ctx, name)
		cancel()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's admin listener did not answer in 15 s: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

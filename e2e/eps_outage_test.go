package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// An EPS node goes down (first the private side's, then the public side's): new clients are
// closed promptly, well inside accept_timeout (10 s), while a connection already relaying keeps
// working; when the node comes back, new connections work again without restarting a proxy, so
// both proxies' EPS clients reconnect by themselves.
func TestEPSNodeOutage(t *testing.T) {
	t.Parallel()
	c := newChain(t)
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

package e2e

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// drainTimeout is both proxies' drain_timeout in the SIGTERM test (30 s in the dev settings).
const drainTimeout = 4 * time.Second

// SIGTERM on either proxy: it stops taking new clients at once, lets a connection that is already
// relaying finish (a keep-alive client completes a request after the signal), exits 0 once that
// connection closes, and leaves its announcements on disk. A relayed connection that never ends
// is cut at drain_timeout.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	for _, role := range []string{"public-proxy-1", "private-proxy-1"} {
		overlayRole(t, c, role, fmt.Sprintf("%s: {drain_timeout: %s}\n", role[:strings.IndexByte(role, '-')], drainTimeout))
	}
	startAll(t, c)
	for _, tc := range []struct {
		proxy, dataDir string
		// refused reports whether a new client is turned away.
		refused func() (bool, string)
	}{
		{chain.Public, "public-proxy-1", func() (bool, string) {
			// The listener is closed: nothing accepts the TCP connection.
			conn, err := net.DialTimeout("tcp", c.Ports.PublicTLS, 2*time.Second)
			if err != nil {
				return true, err.Error()
			}
			conn.Close()
			return false, "TCP connection accepted"
		}},
		{chain.Private, "private-proxy-1", func() (bool, string) {
			// The private proxy has no listener for clients: it stops taking incomingConnection,
			// so the public proxy closes a new client.
			_, err := handshakeFails(c, 5*time.Second)
			if err != nil {
				return true, err.Error()
			}
			return false, "TLS handshake completed"
		}},
	} {
		k := openKeepAlive(t, c)
		k.mustGet(t, "before SIGTERM to "+tc.proxy)
		signalled := time.Now()
		if err := c.Signal(tc.proxy, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// New clients are turned away from now on.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			ok, what := tc.refused()
			if ok {
				t.Logf("%s: new clients refused %v after SIGTERM (%s)", tc.proxy, time.Since(signalled).Round(time.Millisecond), what)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: 5 s after SIGTERM a new client still got through: %s", tc.proxy, what)
			}
		}
		// The relayed connection still works, and the proxy waits for it (drain_timeout 30 s).
		body := fmt.Sprintf(`{"after_sigterm_to": %q}`, tc.proxy)
		if code, got, err := k.do(body); err != nil || code != 200 || got != body {
			t.Fatalf("%s: request on the relayed connection after SIGTERM: %d %q %v", tc.proxy, code, got, err)
		}
		if exited, err := c.Wait(tc.proxy, 500*time.Millisecond); exited {
			t.Fatalf("%s exited (%v) while a relayed connection was still open; want it to drain", tc.proxy, err)
		}
		closed := time.Now()
		k.conn.Close()
		exited, err := c.Wait(tc.proxy, 15*time.Second)
		if !exited {
			t.Fatalf("%s did not exit within 15 s of its last relayed connection closing", tc.proxy)
		}
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM; want status 0\n%s", tc.proxy, err, tail(c.Log(tc.proxy), 20))
		}
		t.Logf("%s exited 0, %v after the relayed connection closed (%v after SIGTERM)", tc.proxy,
			time.Since(closed).Round(time.Millisecond), time.Since(signalled).Round(time.Millisecond))
		if names := storedDomains(t, c, tc.dataDir); !slices.Contains(names, chain.Domain) {
			t.Errorf("%s's announcements file lists %v, want %s", tc.proxy, names, chain.Domain)
		}
		// Back in service for the next round.
		if err := c.Start(tc.proxy); err != nil {
			t.Fatal(err)
		}
		waitGet(t, c, chain.Domain)

		// A relayed connection that never ends does not hold the shutdown: it is cut at
		// drain_timeout and the proxy exits.
		stuck := openKeepAlive(t, c)
		stuck.mustGet(t, "before the second SIGTERM to "+tc.proxy)
		signalled = time.Now()
		if err := c.Signal(tc.proxy, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exited, err = c.Wait(tc.proxy, drainTimeout+10*time.Second)
		if !exited {
			t.Fatalf("%s still running %v after SIGTERM with a stuck connection (drain_timeout %v)", tc.proxy, drainTimeout+10*time.Second, drainTimeout)
		}
		elapsed := time.Since(signalled)
		t.Logf("%s with a stuck connection: exited (%v) %v after SIGTERM; drain_timeout %v", tc.proxy, err, elapsed.Round(time.Millisecond), drainTimeout)
		if elapsed < drainTimeout-500*time.Millisecond {
			t.Errorf("%s exited %v after SIGTERM, before drain_timeout %v, with a relayed connection open", tc.proxy, elapsed, drainTimeout)
		}
		if n, _, err := closedBy(stuck.conn, time.Now(), 5*time.Second); err != nil {
			t.Errorf("%s gone, but the stuck client's connection is %v", tc.proxy, err)
		} else if n != 0 {
			t.Errorf("the stuck client got %d bytes at the cut", n)
		}
		if err := c.Start(tc.proxy); err != nil {
			t.Fatal(err)
		}
		waitGet(t, c, chain.Domain)
	}
}

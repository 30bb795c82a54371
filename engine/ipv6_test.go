package engine_test

import (
	"net"
	"testing"

	"epsproxy/engine"
)

// The engine serves IPv6 listeners the same way, and a rate limit counts ::1 as a source.

func freeAddr6(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestIPv6Loopback(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) {
		c.PublicAddr, c.InternalAddr = freeAddr6(t), freeAddr6(t)
		c.HelloTimeout = longPhase
		c.PublicRate = engine.RateLimit{Limit: 2, Window: longPhase}
	})
	wait(t, goodClientAsync(r), "client over IPv6")
	partial := dial(t, r.cfg.PublicAddr)
	waitFor(t, "the second connection to be held", func() bool { return r.eng.HelloConns() == 1 })
	refusedAtOnce(t, dial(t, r.cfg.PublicAddr), "third connection from ::1 in the window")
	stillOpen(t, partial, "second connection from ::1")
	wantStats(t, r.eng, map[string]int64{"Accepted": 3, "Matched": 1, "Paired": 1, "RateLimited": 1, "Refused": 1})
}

package testnet

import (
	"testing"

	"epsproxy/internal/redisproc"
)

// Redis is a real redis-server started by a test on a free loopback port (internal/redisproc),
// with its data in a temporary directory and no persistence unless asked, stopped when the test
// ends. The test fails if redis-server is not installed: CI installs it (Debian's redis-server).
type Redis struct {
	*redisproc.Server
	t testing.TB
}

// StartRedis starts redis-server; extra are more config arguments (e.g. "--appendonly", "yes").
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	s, err := redisproc.Start(FreeAddr(t), t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return &Redis{Server: s, t: t}
}

// Restart starts redis-server again on the same port and directory; the test fails if it cannot.
func (r *Redis) Restart() {
	r.t.Helper()
	if err := r.Server.Restart(); err != nil {
		r.t.Fatal(err)
	}
}

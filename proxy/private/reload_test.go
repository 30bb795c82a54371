package private

import (
	"slices"
	"testing"
	"time"

	"epsproxy/internal/config"
)

// A reload applies every key read at use, the relay's cap and timeouts and the next stop's drain,
// and names only the keys a restart applies; a refused reload changes nothing.
func TestReloadAppliesTheKeysReadAtUse(t *testing.T) {
	s := Settings{InternalEndpoint: "127.0.0.1:8888"}
	p := newProxy(t, s, t.TempDir())
	s.DialTimeout = config.Duration(2 * time.Second)
	s.StandbyWait = config.Duration(time.Minute)
	s.InternalEndpoint = "127.0.0.1:8889"
	s.RuntimeTargets = []string{"127.0.0.9:9000"}
	s.MaxNamesPerOperator = 3
	s.Relay.MaxPairs = 9
	s.Relay.DrainTimeout = config.Duration(4 * time.Second)
	s.Workers = 7
	restart, err := p.Reload(s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(restart, []string{"workers"}) {
		t.Errorf("restart keys %q, want only workers", restart)
	}
	l := p.live()
	if l.DialTimeout.D() != 2*time.Second || l.StandbyWait.D() != time.Minute || l.MaxNamesPerOperator != 3 ||
		!l.RuntimeTargets.Allows("127.0.0.9:9000") || p.target(Announcement{}) != "127.0.0.1:8889" {
		t.Errorf("the settings in force after the reload: %+v", *l)
	}
	if p.relay.MaxPairs() != 9 || p.DrainTimeout() != 4*time.Second {
		t.Errorf("max_pairs %d, drain_timeout %v after the reload", p.relay.MaxPairs(), p.DrainTimeout())
	}
	s.DialTimeout = config.Duration(-time.Second)
	if _, err := p.Reload(s); err == nil {
		t.Fatal("a negative dial_timeout was taken")
	}
	if p.live().DialTimeout.D() != 2*time.Second {
		t.Errorf("a refused reload changed dial_timeout to %v", p.live().DialTimeout.D())
	}
}

package public

import (
	"slices"
	"testing"
	"time"

	"epsproxy/internal/config"
	"epsproxy/proxy"
)

// A reload gives the relay its new cap and timeouts and the next stop its drain_timeout, and
// names only the keys it cannot apply.
func TestReloadAppliesTheRelayKeys(t *testing.T) {
	p := newProxy(t)
	if p.DrainTimeout() != proxy.DefaultDrainTimeout {
		t.Fatalf("drain timeout at start: %v, want the default %v", p.DrainTimeout(), proxy.DefaultDrainTimeout)
	}
	s := p.s
	s.Relay.MaxPairs = 7
	s.Relay.DrainTimeout = config.Duration(3 * time.Second)
	s.Relay.IdleTimeout = config.Duration(time.Minute)
	s.Relay.RelayLoops = 5
	s.MaxPending = 11
	restart, err := p.Reload(s)
	if err != nil {
		t.Fatal(err)
	}
	if idle, _ := p.relay.Timeouts(); p.relay.MaxPairs() != 7 || idle != time.Minute || p.DrainTimeout() != 3*time.Second {
		t.Errorf("after the reload: max_pairs %d, idle_timeout %v, drain_timeout %v", p.relay.MaxPairs(), idle, p.DrainTimeout())
	}
	if !slices.Equal(restart, []string{"relay_loops"}) {
		t.Errorf("restart keys %q, want only relay_loops", restart)
	}
	s.Relay.MaxPairs = -1
	if _, err := p.Reload(s); err == nil {
		t.Error("a negative max_pairs was taken")
	}
	if p.relay.MaxPairs() != 7 {
		t.Errorf("a refused reload changed max_pairs to %d", p.relay.MaxPairs())
	}
}

package engine

import (
	"net/netip"
	"testing"
)

func TestPhaseCapLimitsChangeWhileCounting(t *testing.T) {
	src := netip.MustParsePrefix("127.0.0.2/32")
	p := newPhaseCap(1, 0)
	if p.enter(src) != capOK || p.enter(src) != capSource {
		t.Fatal("a per-source cap of 1 admits one connection")
	}
	if !p.setLimits(2, 0) || p.enter(src) != capOK || p.enter(src) != capSource {
		t.Fatal("raised to 2, the cap admits a second connection and no third")
	}
	if !p.setLimits(0, 0) || p.enter(src) != capOK {
		t.Fatal("turned off, the cap admits more")
	}
	for range 3 {
		p.leave(src)
	}
	if n, s := p.counts(); n != 0 || s != 0 {
		t.Errorf("after every connection left: %d connections from %d sources", n, s)
	}
	off := newPhaseCap(0, 0)
	if off.setLimits(1, 0) {
		t.Error("a phase not counted since start cannot be capped by a reload")
	}
	if !off.setLimits(0, 0) {
		t.Error("leaving an uncounted phase uncapped is not a change")
	}
}

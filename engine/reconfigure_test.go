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
	p.setLimits(2, 0)
	if p.enter(src) != capOK || p.enter(src) != capSource {
		t.Fatal("raised to 2, the cap admits a second connection and no third")
	}
	p.setLimits(0, 0)
	if p.enter(src) != capFree {
		t.Fatal("turned off, the phase admits uncounted")
	}
	p.leave(src)
	p.leave(src)
	if n, s := p.counts(); n != 0 || s != 0 {
		t.Errorf("after every counted connection left: %d connections from %d sources", n, s)
	}
}

// A phase without caps at start can be capped by a reload: the connections that enter after it
// count, those admitted before do not (they leave without being uncounted).
func TestPhaseCapTurnedOnLater(t *testing.T) {
	src := netip.MustParsePrefix("127.0.0.2/32")
	p := newPhaseCap(0, 0)
	for range 3 {
		if p.enter(src) != capFree {
			t.Fatal("an uncapped phase counted a connection")
		}
	}
	p.setLimits(2, 0)
	if p.enter(src) != capOK || p.enter(src) != capOK || p.enter(src) != capSource {
		t.Fatal("turned on with 2 per source: two admitted, the third refused")
	}
	p.leave(src)
	if p.enter(src) != capOK {
		t.Fatal("after one left, the source has room again")
	}
	p.leave(src)
	p.leave(src)
	if n, s := p.counts(); n != 0 || s != 0 || len(p.open) != 0 {
		t.Errorf("after every counted connection left: %d connections from %d sources", n, s)
	}
}

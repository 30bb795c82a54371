package engine

import (
	"net/netip"
	"testing"

	"epsproxy/internal/netsrc"
)

// Two addresses of one IPv6 /64 are one source; another /64 and an IPv4 address are others.
// Loopback offers one IPv6 address, so this is checked on the cap itself.
func TestPhaseCapGroupsIPv6By64(t *testing.T) {
	p := newPhaseCap(2, 4)
	src := func(s string) netip.Prefix { return netsrc.Of(netip.MustParseAddr(s)) }
	a, b := src("2001:db8:0:1::1"), src("2001:db8:0:1:ffff::2")
	other, v4 := src("2001:db8:0:2::1"), src("::ffff:192.0.2.1")
	steps := []struct {
		src  netip.Prefix
		want capHit
	}{
		{a, capOK}, {b, capOK}, {a, capSource}, {b, capSource},
		{other, capOK}, {v4, capOK}, {src("192.0.2.2"), capTotal},
	}
	for i, s := range steps {
		if got := p.enter(s.src); got != s.want {
			t.Errorf("step %d (%v): enter = %d, want %d", i, s.src, got, s.want)
		}
	}
	if n, srcs := p.counts(); n != 4 || srcs != 3 {
		t.Errorf("counts = %d conns from %d sources, want 4 from 3", n, srcs)
	}
	p.leave(b)
	if got := p.enter(a); got != capOK {
		t.Errorf("after a leave, enter = %d, want capOK", got)
	}
	for _, s := range []netip.Prefix{a, a, other, v4} {
		p.leave(s)
	}
	if n, srcs := p.counts(); n != 0 || srcs != 0 || len(p.open) != 0 {
		t.Errorf("after every leave: %d conns from %d sources, want none", n, srcs)
	}
}

func TestPhaseCapOff(t *testing.T) {
	p := newPhaseCap(0, 0)
	for range 10 {
		if p.enter(netip.Prefix{}) != capFree {
			t.Fatal("an uncapped phase refused or counted")
		}
	}
	if n, srcs := p.counts(); n != 0 || srcs != 0 {
		t.Errorf("an uncapped phase counts %d conns from %d sources", n, srcs)
	}
}

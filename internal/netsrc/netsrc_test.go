package netsrc

import (
	"net"
	"net/netip"
	"testing"
)

func TestSourceGroupsIPv6By64(t *testing.T) {
	a := Source(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1"), Port: 1})
	b := Source(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::9"), Port: 2})
	c := Source(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1"), Port: 1})
	if a != b || a == c || a != netip.MustParsePrefix("2001:db8:1:2::/64") {
		t.Errorf("IPv6 sources: %v %v %v", a, b, c)
	}
	if v4 := Source(&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.2"), Port: 1}); v4 != netip.MustParsePrefix("127.0.0.2/32") {
		t.Errorf("mapped IPv4 source: %v", v4)
	}
	if v4 := Source(&net.TCPAddr{IP: net.ParseIP("127.0.0.2").To4(), Port: 1}); v4 != netip.MustParsePrefix("127.0.0.2/32") {
		t.Errorf("4-byte IPv4 source: %v", v4)
	}
}

func TestOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"::1", "::/64"},
		{"::2", "::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"2001:db8::ffff:ffff:ffff:ffff", "2001:db8::/64"},
	} {
		if got := Of(netip.MustParseAddr(tc.in)); got != netip.MustParsePrefix(tc.want) {
			t.Errorf("Of(%s) = %v, want %s", tc.in, got, tc.want)
		}
	}
	if got := Of(netip.Addr{}); got != (netip.Prefix{}) {
		t.Errorf("Of(zero) = %v, want the zero Prefix", got)
	}
	// Another address family's peer (a Unix socket) is one source of its own, not a panic.
	if got := Source(&net.UnixAddr{Name: "@x", Net: "unix"}); got != (netip.Prefix{}) {
		t.Errorf("Source(unix) = %v", got)
	}
}

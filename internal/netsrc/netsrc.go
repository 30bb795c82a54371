// Package netsrc says what counts as one source of connections, for the per-source caps and rate
// limits of every listener: an IPv4 address, or the /64 of an IPv6 address (the smallest prefix a
// site is given, so one host can use every address in it at will). It depends on nothing but the
// standard library, so any listener can share the rule.
package netsrc

import (
	"net"
	"net/netip"
)

// Of returns ip's source: ip/32 for IPv4 (an IPv4-mapped IPv6 address is unmapped first), its
// /64 for IPv6 with any zone dropped. The zero Addr is the zero Prefix, one source of its own.
func Of(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p
}

// Source returns the source of a connection's remote address. Anything that is not an IP address
// is the zero Prefix.
func Source(a net.Addr) netip.Prefix {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return Of(ip)
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return Of(ip)
	case nil:
		return netip.Prefix{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	return Of(ap.Addr())
}

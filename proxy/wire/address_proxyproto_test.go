package wire_test

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"

	"epsproxy/proxy/wire"
)

// The address header is PROXY protocol v2 as another implementation (the one the demo's
// internal server uses) reads and writes it.
func TestAddressHeaderAgreesWithGoProxyproto(t *testing.T) {
	for _, c := range []struct{ src, dst string }{
		{"127.0.0.2:40000", "127.0.0.1:4433"},
		{"[2001:db8::1]:1", "[2001:db8::2]:443"},
	} {
		a := wire.Addresses{Source: netip.MustParseAddrPort(c.src), Destination: netip.MustParseAddrPort(c.dst)}
		// Ours, read by go-proxyproto.
		h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(wire.AppendAddressHeader(nil, a))))
		if err != nil {
			t.Fatalf("%v: go-proxyproto refuses our header: %v", a, err)
		}
		src, dst, ok := h.TCPAddrs()
		if !ok || h.Command != proxyproto.PROXY || src.AddrPort() != a.Source || dst.AddrPort() != a.Destination {
			t.Errorf("%v: go-proxyproto read %v %v -> %v", a, h.Command, src, dst)
		}
		// go-proxyproto's, read by us.
		theirs, err := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(a.Source), net.TCPAddrFromAddrPort(a.Destination)).Format()
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := wire.ParseAddressHeader(theirs)
		if err != nil || n != len(theirs) || got != a {
			t.Errorf("%v: we read go-proxyproto's header as %v (%d of %d bytes, %v)", a, got, n, len(theirs), err)
		}
	}
	// LOCAL, both ways.
	h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(wire.AppendAddressHeader(nil, wire.Addresses{}))))
	if err != nil || h.Command != proxyproto.LOCAL {
		t.Errorf("go-proxyproto reads our LOCAL header as %v, %v", h, err)
	}
	local, _ := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
	if a, n, err := wire.ParseAddressHeader(local); err != nil || n != len(local) || a.Known() {
		t.Errorf("we read go-proxyproto's LOCAL header as %v (%d, %v)", a, n, err)
	}
}

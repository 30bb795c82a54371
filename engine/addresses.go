package engine

import (
	"net"
	"net/netip"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"epsproxy/proxy/wire"
)

// clientAddresses are a client's address and port as the engine accepted it, and those of the
// public listener it connected to: what a private side learns of its client (Notice, or the
// address header on a standby socket that asked). gnet gives the listener's bound address as a
// connection's local one, so for a listener bound to a wildcard address the kernel is asked for
// the connection's own (getsockname, one system call, only then). A part it cannot tell is left
// out, and the addresses are then not Known.
func clientAddresses(c gnet.Conn) wire.Addresses {
	var a wire.Addresses
	if ra, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a.Source = unmapped(ra.AddrPort())
	}
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		a.Destination = unmapped(la.AddrPort())
	}
	if !a.Destination.IsValid() || a.Destination.Addr().IsUnspecified() {
		a.Destination = localAddrPort(c.Fd())
	}
	return a
}

// localAddrPort is the socket's own address and port (invalid if the kernel does not say).
func localAddrPort(fd int) netip.AddrPort {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return unmapped(netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)))
	}
	return netip.AddrPort{}
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

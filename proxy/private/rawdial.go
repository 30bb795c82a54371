package private

import (
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// connectRaw starts a non-blocking TCP connect to addr, an IP literal and port, and returns the
// socket at once, for the relay to own: it writes the hello as soon as the connect completes and
// reports a refused or failed connect as the pair's error. Compared with net.Dial and handing the
// conn to the relay (which dups it), this saves the runtime poller's registration, the wait for
// the connect in a goroutine, and a dup and close per connection. ok is false when addr is not
// an IP literal: the caller dials by name then.
//
// The connect is bounded by SYN retries instead of a timer: synRetries(timeout) gives up after
// about timeout (1 s, then doubling, per retry) without touching the established connection.
func connectRaw(addr string, timeout time.Duration) (fd int, ok bool, err error) {
	ap, perr := netip.ParseAddrPort(addr)
	if perr != nil {
		return -1, false, nil
	}
	ip := ap.Addr().Unmap()
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip.Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16(), ZoneId: zoneID(ip.Zone())}
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, true, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_SYNCNT, synRetries(timeout))
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		_ = unix.Close(fd)
		return -1, true, err
	}
	return fd, true, nil
}

// synRetries is the fewest SYN retransmissions whose total wait (1 s + 2 s + 4 s ... before
// giving up) reaches timeout; at least 1, at most the kernel's limit of 127.
func synRetries(timeout time.Duration) int {
	r := 1
	for wait := 3 * time.Second; wait < timeout && r < 127; wait = 2*wait + time.Second {
		r++
	}
	return r
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

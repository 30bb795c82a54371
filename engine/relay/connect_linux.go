package relay

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Connect starts a TCP connect to ap and returns the socket at once, with the connect
// under way. It is meant to be given to Add, Await or AddConnFD, or returned from an
// Awaiter's First, while it connects: the relay sends to it once the connect completes,
// and a refused or failed connect ends the pair with ReasonFailed and a Stats.Err that
// unwraps to the errno (errors.Is(st.Err, unix.ECONNREFUSED)), or an awaited socket
// with that errno given to Gone. Until then the caller owns the descriptor and closes it
// if it keeps it.
//
// The socket is made with raw system calls rather than net.Dial because nothing needs
// to wait for it: net.Dial would park a goroutine until the connect completes, register
// the socket with Go's network poller, and need a dup to hand it over, whereas the
// relay's own epoll set reports the outcome. Every call here returns without blocking,
// so Connect is safe on a relay loop, from an Awaiter's First in particular, and makes
// them raw for the reason given in sys_linux.go.
//
// No timer bounds the connect. timeout sets TCP_SYNCNT instead: the kernel gives up
// after the fewest SYN retransmissions (1 s, 2 s, 4 s, ... apart) that wait at least
// timeout in all, and never fewer than one (about 3 s); the setting does not affect the
// connection once established. The socket is non-blocking, close-on-exec, and has
// TCP_NODELAY set, since what the relay writes to it (a hello, a greeting) should go
// out at once.
//
// An error means there is no socket: ap is not a valid address, the process is out of
// descriptors, or the kernel refused the connect on the spot (ENETUNREACH, or a
// loopback ECONNREFUSED that arrived before connect returned).
func Connect(ap netip.AddrPort, timeout time.Duration) (fd int, err error) {
	if !ap.Addr().IsValid() {
		return -1, fmt.Errorf("relay: connect: invalid address %v", ap)
	}
	var (
		sa4    unix.RawSockaddrInet4
		sa6    unix.RawSockaddrInet6
		sa     unsafe.Pointer
		saLen  uintptr
		port   *uint16
		family int
	)
	if ip := ap.Addr().Unmap(); ip.Is4() {
		family = unix.AF_INET
		sa4.Family, sa4.Addr = unix.AF_INET, ip.As4()
		sa, saLen, port = unsafe.Pointer(&sa4), unsafe.Sizeof(sa4), &sa4.Port
	} else {
		family = unix.AF_INET6
		sa6.Family, sa6.Addr, sa6.Scope_id = unix.AF_INET6, ip.As16(), scopeID(ip.Zone())
		sa, saLen, port = unsafe.Pointer(&sa6), unsafe.Sizeof(sa6), &sa6.Port
	}
	// sin_port is in network byte order whatever the host's.
	p := (*[2]byte)(unsafe.Pointer(port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())

	s, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if e != 0 {
		return -1, os.NewSyscallError("socket", e)
	}
	fd = int(s)
	// Either option failing leaves the kernel default, which still works.
	setIntOption(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	setIntOption(fd, unix.IPPROTO_TCP, unix.TCP_SYNCNT, synRetries(timeout))
	// EINPROGRESS is the normal answer; after EINTR the connect goes on in the
	// background just the same.
	_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), saLen)
	if e != 0 && e != unix.EINPROGRESS && e != unix.EINTR {
		closeRaw(int32(fd))
		return -1, os.NewSyscallError("connect", e)
	}
	return fd, nil
}

// setIntOption sets an int socket option, ignoring failure.
func setIntOption(fd, level, opt, v int) {
	x := int32(v)
	_, _, _ = unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&x)), unsafe.Sizeof(x), 0)
}

// synRetries is the TCP_SYNCNT for a connect timeout. With r retransmissions the kernel
// gives up after 2^(r+1)-1 seconds (1 s to the first, then doubling, plus the last
// wait); the result is the smallest r whose total reaches timeout, within [1, 127] (the
// kernel's range; 127 is far beyond any useful wait).
func synRetries(timeout time.Duration) int {
	r := 1
	// total turns negative when it overflows, beyond any timeout: r is then enough.
	for total := 3 * time.Second; total > 0 && total < timeout && r < 127; r++ {
		total = 2*total + time.Second
	}
	return r
}

// scopeID turns an IPv6 zone, an interface name or index, into the sin6_scope_id the
// kernel needs for a link-local address; 0 (none) if there is no such interface.
func scopeID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

package private

import (
	"net"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// connectAddr starts a non-blocking TCP connect to ap and returns the socket at once, for the
// relay to own: it writes to it as soon as the connect completes and reports a refused or failed
// connect as the socket's error. Unlike net.Dial it needs no goroutine to wait for the connect,
// no registration with the runtime poller and no dup to hand the socket over, and it can run on
// a relay loop: every call here returns at once, so they are raw system calls (see the relay's
// sys.go for why that matters).
//
// The connect is bounded by SYN retries instead of a timer: synRetries(timeout) gives up after
// about timeout (1 s, then doubling, per retry) without touching the established connection.
func connectAddr(ap netip.AddrPort, timeout time.Duration) (int, error) {
	ip := ap.Addr().Unmap()
	var (
		sa4    unix.RawSockaddrInet4
		sa6    unix.RawSockaddrInet6
		sa     unsafe.Pointer
		salen  uintptr
		family = unix.AF_INET
	)
	port := (*[2]byte)(unsafe.Pointer(&sa4.Port))
	if ip.Is4() {
		sa4.Family, sa4.Addr = unix.AF_INET, ip.As4()
		sa, salen = unsafe.Pointer(&sa4), unsafe.Sizeof(sa4)
	} else {
		family = unix.AF_INET6
		sa6.Family, sa6.Addr, sa6.Scope_id = unix.AF_INET6, ip.As16(), zoneID(ip.Zone())
		port = (*[2]byte)(unsafe.Pointer(&sa6.Port))
		sa, salen = unsafe.Pointer(&sa6), unsafe.Sizeof(sa6)
	}
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port()) // network byte order
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if e != 0 {
		return -1, e
	}
	fd := int(r)
	setsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	setsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_SYNCNT, synRetries(timeout))
	if _, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), salen); e != 0 && e != unix.EINPROGRESS && e != unix.EINTR {
		_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
		return -1, e
	}
	return fd, nil
}

// setsockoptInt sets an int option; failures leave the default, which still works.
func setsockoptInt(fd, level, opt, v int) {
	x := int32(v)
	_, _, _ = unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&x)), 4, 0)
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

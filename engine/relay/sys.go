package relay

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Thin syscall wrappers. x/sys has no send/recv that both report a byte count and
// skip the address handling, so these call sendto/recvfrom directly.

// send writes p to a socket without blocking and without raising SIGPIPE when the
// peer is gone (the error comes back as EPIPE instead).
func send(fd int32, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// recv reads from a socket without blocking; flags may add MSG_PEEK.
func recv(fd int32, p []byte, flags int) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// splice moves up to n bytes between a socket and a pipe without blocking on the
// pipe (the sockets themselves are non-blocking).
func splice(from, to int32, n int) (int, error) {
	m, err := unix.Splice(int(from), nil, int(to), nil, n, unix.SPLICE_F_NONBLOCK)
	return int(m), err
}

// socketError returns the pending error of a socket (SO_ERROR), clearing it.
func socketError(fd int32) error {
	v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// abort makes the next close(2) of fd send RST instead of FIN, so a peer sees a
// cut-off stream as an error rather than as a clean end.
func abort(fd int32) {
	_ = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

// checkStreamSocket verifies that fd is a stream socket and makes it non-blocking:
// one blocking descriptor would stall every pair of its loop.
func checkStreamSocket(fd int) error {
	if fd < 0 {
		return fmt.Errorf("%w: %d", ErrBadFD, fd)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("%w: fd %d: %v", ErrBadFD, fd, err)
	}
	if typ != unix.SOCK_STREAM {
		return fmt.Errorf("%w: fd %d is not a stream socket", ErrBadFD, fd)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("%w: fd %d: %v", ErrBadFD, fd, err)
	}
	if fl&unix.O_NONBLOCK == 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl|unix.O_NONBLOCK); err != nil {
			return fmt.Errorf("%w: fd %d: %v", ErrBadFD, fd, err)
		}
	}
	return nil
}

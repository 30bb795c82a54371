package relay

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Thin syscall wrappers. x/sys has no send/recv that both report a byte count and
// skip the address handling, so these call sendto/recvfrom directly.
//
// The calls on the relay's path are raw system calls: every descriptor the relay
// touches is non-blocking, so none of them can wait, and the scheduler hand-off
// of an ordinary call (entersyscall) is not free: on a process whose Ps were all
// idle it also wakes the runtime's sysmon thread, which then polls every 20 µs
// for a while. The relay makes a dozen such calls per connection.

// send writes p to a socket without blocking and without raising SIGPIPE when the
// peer is gone (the error comes back as EPIPE instead).
func send(fd int32, p []byte) (int, error) { return sendFlags(fd, p, 0) }

// sendFlags is send with more flags: MSG_MORE holds a frame header for the payload after it.
func sendFlags(fd int32, p []byte, flags int) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		uintptr(flags|unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT), 0, 0)
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
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// splice moves up to n bytes between a socket and a pipe without blocking on the
// pipe (the sockets themselves are non-blocking).
func splice(from, to int32, n int) (int, error) {
	m, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(n), unix.SPLICE_F_NONBLOCK)
	if e != 0 {
		return 0, e
	}
	return int(m), nil
}

// inQueue is how many bytes a socket holds for reading (SIOCINQ).
func inQueue(fd int32) (int, error) {
	var n int32
	if _, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCINQ, uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0, e
	}
	return int(n), nil
}

// closeRaw closes a descriptor. On a socket that is not lingering (the relay's
// abortive close sets a zero linger, which resets at once) close does not wait.
func closeRaw(fd int32) {
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// shutdownWrite sends the socket's FIN.
func shutdownWrite(fd int32) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0); e != 0 {
		return e
	}
	return nil
}

// epollCtl adds (with ev) or deletes (ev nil) fd in the set epfd.
func epollCtl(epfd, op int, fd int32, ev *unix.EpollEvent) error {
	if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0); e != 0 {
		return e
	}
	return nil
}

// eventfdWrite and eventfdRead signal and reset a non-blocking eventfd.
func eventfdWrite(fd int, v *[8]byte) {
	_, _, _ = unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), 8)
}

func eventfdRead(fd int) {
	var b [8]byte
	_, _, _ = unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 8)
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

// checkFD checks a descriptor given to the relay: checkStreamSocket, or only its range when the
// caller vouches for it (Config.TrustedFDs).
func (r *Relay) checkFD(fd int) error {
	if r.cfg.trusted && fd >= 0 {
		return nil
	}
	return checkStreamSocket(fd)
}

// checkStreamSocket verifies that fd is a stream socket and makes it non-blocking:
// one blocking descriptor would stall every pair of its loop.
func checkStreamSocket(fd int) error {
	if fd < 0 {
		return fmt.Errorf("%w: %d", ErrBadFD, fd)
	}
	var typ int32
	size := uint32(unsafe.Sizeof(typ))
	if _, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_TYPE,
		uintptr(unsafe.Pointer(&typ)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return fmt.Errorf("%w: fd %d: %v", ErrBadFD, fd, e)
	}
	if typ != unix.SOCK_STREAM {
		return fmt.Errorf("%w: fd %d is not a stream socket", ErrBadFD, fd)
	}
	fl, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fd), unix.F_GETFL, 0)
	if e != 0 {
		return fmt.Errorf("%w: fd %d: %v", ErrBadFD, fd, e)
	}
	if fl&unix.O_NONBLOCK == 0 {
		if _, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fd), unix.F_SETFL, fl|unix.O_NONBLOCK); e != 0 {
			return fmt.Errorf("%w: fd %d: %v", ErrBadFD, fd, e)
		}
	}
	return nil
}

// epollWait collects the events the set holds without waiting (timeout 0).
func epollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

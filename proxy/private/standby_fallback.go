package private

import (
	"context"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"epsproxy/proxy/wire"
)

// The fallback path of a standby client: when serving it needs blocking calls (TLS terminated
// here, or a target given by name that must be resolved), the relay loop hands a duplicate of
// the socket, with the hello already read, to a goroutine.

// serveStandby relays a standby connection the loop handed over: fd is a duplicate of the
// socket, hello the bytes already read from it after the address header, addrs the client's
// addresses (First checked that a name that wants them has them).
func (p *Proxy) serveStandby(fd int, proxy string, a Announcement, target string, hello []byte, addrs wire.Addresses) {
	f := os.NewFile(uintptr(fd), "standby")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		p.log.Warn("standby connection lost", "domain", a.Domain, "from", proxy, "err", err)
		return
	}
	c := nc.(*net.TCPConn)
	if p.term != nil {
		if err := p.term.serve(&replayConn{TCPConn: c, pre: hello}, target, p.forwardedFor(a, addrs)); err != nil {
			c.Close()
			p.refused(a.Domain, refusedTerminate)
			p.log.Warn("terminated connection refused; client closed", "domain", a.Domain, "err", err)
		}
		return
	}
	internal, err := p.dial(context.Background(), "tcp", target)
	if err != nil {
		c.Close()
		p.refused(a.Domain, refusedInternal)
		p.log.Warn("internal server unreachable; client closed", "domain", a.Domain, "target", target, "err", err)
		return
	}
	head, _ := p.addressHead(nil, a, addrs)
	if err := p.relay.AddConns(c, internal.(*net.TCPConn), nil, append(head, hello...), a.Domain); err != nil {
		p.refused(a.Domain, refusedRelay)
		p.log.Warn("relay refused a pair", "domain", a.Domain, "err", err)
		return
	}
	p.domains.Get(a.Domain).Relayed()
}

// serveLocal serves a framed standby socket's client that needs blocking calls: it returns one
// end of a socket pair for the relay to pair with the standby socket fd (which unwraps the frames
// into it) and serves the other end on a goroutine, as serveStandby does a duplicate of an
// unframed socket; the TLS terminator sees the standby socket's addresses on it. The goroutine's
// own relay pair, if any, is tagged innerHop: its bytes are the client's pair's, counted once.
func (p *Proxy) serveLocal(fd int, proxy string, a Announcement, target string, addrs wire.Addresses) (int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var at socketAddrs
	if p.term != nil {
		at = addrsOf(fd)
	}
	go p.serveLocalEnd(fds[1], at, proxy, a, target, addrs)
	return fds[0], nil
}

// socketAddrs are a socket's own and its peer's addresses.
type socketAddrs struct{ local, remote net.Addr }

func addrsOf(fd int) socketAddrs {
	tcp := func(sa unix.Sockaddr, err error) net.Addr {
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
		case *unix.SockaddrInet6:
			return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
		}
		return &net.TCPAddr{}
	}
	return socketAddrs{local: tcp(unix.Getsockname(fd)), remote: tcp(unix.Getpeername(fd))}
}

// addrConn is the local end of a socket pair that names the standby socket's addresses.
type addrConn struct {
	net.Conn
	at socketAddrs
}

func (c addrConn) LocalAddr() net.Addr  { return c.at.local }
func (c addrConn) RemoteAddr() net.Addr { return c.at.remote }

// innerHop tags the relay pair that carries a framed standby client from the socket pair to its
// internal server (serveLocal): pairDone does not count it again.
type innerHop struct{}

func (p *Proxy) serveLocalEnd(fd int, at socketAddrs, proxy string, a Announcement, target string, addrs wire.Addresses) {
	if p.term != nil {
		f := os.NewFile(uintptr(fd), "standby-local")
		nc, err := net.FileConn(f)
		f.Close()
		if err == nil {
			err = p.term.serve(addrConn{nc, at}, target, p.forwardedFor(a, addrs))
			if err != nil {
				nc.Close()
			}
		}
		if err != nil {
			p.refused(a.Domain, refusedTerminate)
			p.log.Warn("terminated connection refused; client closed", "domain", a.Domain, "from", proxy, "err", err)
		}
		return
	}
	internal, err := p.dial(context.Background(), "tcp", target)
	if err != nil {
		_ = unix.Close(fd)
		p.refused(a.Domain, refusedInternal)
		p.log.Warn("internal server unreachable; client closed", "domain", a.Domain, "target", target, "err", err)
		return
	}
	head, _ := p.addressHead(nil, a, addrs)
	if err := p.relay.AddConnFD(internal.(*net.TCPConn), fd, head, nil, innerHop{}); err != nil {
		p.refused(a.Domain, refusedRelay)
		p.log.Warn("relay refused a pair", "domain", a.Domain, "err", err)
		return
	}
	p.domains.Get(a.Domain).Relayed()
}

// replayConn gives the bytes already read from a standby socket back to the TLS terminator.
type replayConn struct {
	*net.TCPConn
	pre []byte
}

func (r *replayConn) Read(b []byte) (int, error) {
	if len(r.pre) > 0 {
		n := copy(b, r.pre)
		r.pre = r.pre[n:]
		return n, nil
	}
	return r.TCPConn.Read(b)
}

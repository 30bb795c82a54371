package private

import (
	"context"
	"net"
	"os"

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

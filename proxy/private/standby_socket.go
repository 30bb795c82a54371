package private

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"epsproxy/engine/hello"
	"epsproxy/engine/relay"
	"epsproxy/proxy/wire"
)

// A standby socket while the relay holds it: its methods run on the relay's loop, so they read
// only the announcements' snapshot, never wait, and make only calls that return at once.

// errHandedOff: First passed the connection to a goroutine (a dup of the socket).
var errHandedOff = errors.New("private: connection handed to a goroutine")

// errNotAnnounced: a standby client asked for a name not announced to that public proxy.
var errNotAnnounced = errors.New("private: not announced")

// parsers are shared by the standby sockets, which only need one while a hello arrives.
var parsers = sync.Pool{New: func() any { return new(hello.Parser) }}

// standbySocket is one standby socket held by the relay (a relay.Awaiter).
type standbySocket struct {
	sp      *standbyPool
	dialed  time.Time
	gen     uint64
	settled bool // taken by a client or gone: no longer counted as waiting
	// addressed: its token was reserved with client_address, so the public proxy writes the
	// address header before the hello.
	addressed bool
	// framed: its token was reserved framed, so it carries one client after another in frames
	// (relay.AwaitFramed); busy while a client's pair holds it, to come back through Keep.
	framed, busy bool
}

// settle takes the socket off the pool's count and wakes the pool's goroutine once enough
// sockets are to be replaced.
func (s *standbySocket) settle() {
	if s.settled {
		return
	}
	s.settled = true
	sp := s.sp
	sp.mu.Lock()
	sp.waiting--
	sp.mu.Unlock()
	sp.kickIfShort()
}

// lend marks a framed socket taken by a client: the pool counts it as coming back.
func (s *standbySocket) lend() {
	s.busy = true
	s.sp.mu.Lock()
	s.sp.busy++
	s.sp.mu.Unlock()
}

// Keep takes a framed socket back when its client's pair ends (relay.Keeper): fd is the socket,
// clean and connected, to wait for the public proxy's next client, or -1 if the pair ended
// otherwise and the relay closed it. A socket the pool has no room for (want waiting already, or
// the pool stopped) is closed, which the public proxy sees as the end of it.
func (s *standbySocket) Keep(fd int) {
	sp := s.sp
	sp.mu.Lock()
	if s.busy {
		s.busy = false
		sp.busy--
	}
	again := fd >= 0 && !sp.stopped && sp.waiting < sp.want
	if again {
		sp.waiting++
	}
	sp.mu.Unlock()
	if !again {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		sp.kickIfShort()
		return
	}
	s.settled = false
	if err := sp.p.relay.AwaitFramed(fd, nil, sp.p.live().StandbyWait.D(), s); err != nil {
		s.settle()
	}
}

// First routes the client's hello, which the public proxy replays first on a standby socket
// (after the address header, on a socket that asked for it), and returns the internal connection
// to pair it with and what that connection gets first.
func (s *standbySocket) First(fd int, data []byte) (relay.Pairing, error) {
	sp := s.sp
	p := sp.p
	addrs, skip, err := s.addresses(data)
	if err != nil {
		return relay.Pairing{}, err
	}
	ps := parsers.Get().(*hello.Parser)
	ch, err := ps.Parse(data[skip:])
	sni := string(ch.ServerName)
	limit := ps.MaxInput()
	parsers.Put(ps)
	if errors.Is(err, hello.ErrIncomplete) && len(data)-skip < limit {
		return relay.Pairing{}, relay.ErrMore
	}
	s.settle()
	sp.tookToken(s.gen)
	if err != nil {
		p.refused("", refusedBadHello)
		p.log.Info("standby connection closed", "reason", "bad_hello", "from", sp.proxy, "err", err)
		return relay.Pairing{}, err
	}
	a, ok := p.anns.match(sni, sp.proxy, time.Now())
	if !ok {
		p.unannounced()
		p.log.Info("standby connection refused", "reason", "not_announced", "domain", sni, "from", sp.proxy)
		return relay.Pairing{}, errNotAnnounced
	}
	// Allocated only for a name that wants the header: a framed socket lives as long as its
	// clients, so it keeps no buffer of its own.
	head, err := p.addressHead(nil, a, addrs)
	if err != nil {
		p.log.Info("standby connection refused", "reason", "client_address_unknown", "domain", sni, "from", sp.proxy)
		return relay.Pairing{}, err
	}
	p.domains.Get(a.Domain).Accepted()
	target := p.target(a)
	ap, perr := netip.ParseAddrPort(target)
	if p.term != nil || perr != nil {
		// TLS terminated here, or a target by name: the blocking path, on a goroutine.
		if s.framed {
			// The relay unwraps the frames into a socket pair whose other end the goroutine
			// serves, and keeps the standby socket for the next client.
			local, err := p.serveLocal(fd, sp.proxy, a, target, addrs)
			if err != nil {
				p.refused(a.Domain, refusedInternal)
				return relay.Pairing{}, err
			}
			s.lend()
			return relay.Pairing{Peer: local, Tag: a.Domain, Skip: skip, Keep: s}, nil
		}
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return relay.Pairing{}, err
		}
		go p.serveStandby(dup, sp.proxy, a, target, bytes.Clone(data[skip:]), addrs)
		return relay.Pairing{}, errHandedOff
	}
	ifd, err := relay.Connect(ap, p.live().DialTimeout.D())
	if err != nil {
		p.refused(a.Domain, refusedInternal)
		p.log.Warn("internal server unreachable; client closed", "domain", sni, "target", target, "err", err)
		return relay.Pairing{}, err
	}
	p.domains.Get(a.Domain).Relayed()
	if s.framed {
		s.lend()
		return relay.Pairing{Peer: ifd, Tag: a.Domain, Skip: skip, Head: head, Keep: s}, nil
	}
	return relay.Pairing{Peer: ifd, Tag: a.Domain, Skip: skip, Head: head}, nil
}

// addresses reads the address header at the start of data on a socket that asked for it: the
// client's addresses and the header's length. A socket that did not ask, or one served by a
// public proxy instance that does not write the header (its data starts with the hello), has
// none. relay.ErrMore asks for the rest of a header; a malformed one closes the connection.
func (s *standbySocket) addresses(data []byte) (wire.Addresses, int, error) {
	if !s.addressed {
		return wire.Addresses{}, 0, nil
	}
	addrs, n, err := wire.ParseAddressHeader(data)
	switch {
	case err == nil:
		return addrs, n, nil
	case errors.Is(err, wire.ErrNoAddressHeader):
		return wire.Addresses{}, 0, nil
	case errors.Is(err, wire.ErrShortAddressHeader):
		return wire.Addresses{}, 0, relay.ErrMore
	}
	s.settle()
	s.sp.tookToken(s.gen)
	s.sp.p.log.Info("standby connection closed", "reason", "bad_address_header", "from", s.sp.proxy, "err", err)
	return wire.Addresses{}, 0, err
}

// Gone notes why a standby socket ended without a client.
func (s *standbySocket) Gone(err error) {
	s.settle()
	sp := s.sp
	quick := time.Since(s.dialed) < standbyQuickClose
	switch {
	case errors.Is(err, relay.ErrClosed) || errors.Is(err, relay.ErrAwaitTimeout):
	case errors.Is(err, io.EOF) && quick:
		// Closed right after the token: the public proxy did not take it.
		sp.refused(s.gen, s.dialed)
	case errors.Is(err, io.EOF):
		// Parked, then closed unused (standby_ttl): the token was taken.
		sp.tookToken(s.gen)
	default:
		// One line per failure that grows the pause, not one per socket of a batch.
		if wait, grew := sp.failed(s.dialed); grew {
			sp.p.log.Info("standby connection failed", "proxy", sp.proxy, "retry_in", wait.String(), "err", err)
		}
	}
}

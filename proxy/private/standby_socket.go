package private

import (
	"errors"
	"io"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"epsproxy/engine/hello"
	"epsproxy/engine/relay"
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
	short := sp.want - sp.waiting
	sp.mu.Unlock()
	switch {
	case short >= sp.kickAt:
		sp.wake()
	case short == 1:
		sp.refill.Reset(standbyRefillDelay)
	}
}

// First routes the client's hello, which the public proxy replays first on a standby socket, and
// returns the internal connection to pair it with.
func (s *standbySocket) First(fd int, data []byte) (int, any, error) {
	sp := s.sp
	p := sp.p
	ps := parsers.Get().(*hello.Parser)
	ch, err := ps.Parse(data)
	sni := string(ch.ServerName)
	limit := ps.MaxInput()
	parsers.Put(ps)
	if errors.Is(err, hello.ErrIncomplete) && len(data) < limit {
		return -1, nil, relay.ErrMore
	}
	s.settle()
	sp.tookToken()
	if err != nil {
		p.refused("", refusedBadHello)
		p.log.Info("standby connection closed", "reason", "bad_hello", "from", sp.proxy, "err", err)
		return -1, nil, err
	}
	a, ok := p.anns.match(sni, sp.proxy, time.Now())
	if !ok {
		p.unannounced()
		p.log.Info("standby connection refused", "reason", "not_announced", "domain", sni, "from", sp.proxy)
		return -1, nil, errNotAnnounced
	}
	p.domains.Get(a.Domain).Accepted()
	target := p.target(a)
	ap, perr := netip.ParseAddrPort(target)
	if p.term != nil || perr != nil {
		// TLS terminated here, or a target by name: the blocking path, on a goroutine.
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return -1, nil, err
		}
		go p.serveStandby(dup, sp.proxy, a, target, append([]byte(nil), data...))
		return -1, nil, errHandedOff
	}
	ifd, err := relay.Connect(ap, p.s.DialTimeout.D())
	if err != nil {
		p.refused(a.Domain, refusedInternal)
		p.log.Warn("internal server unreachable; client closed", "domain", sni, "target", target, "err", err)
		return -1, nil, err
	}
	p.domains.Get(a.Domain).Relayed()
	return ifd, a.Domain, nil
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
		sp.refused(s.gen)
	case errors.Is(err, io.EOF):
		// Parked, then closed unused (standby_ttl): the token was taken.
		sp.tookToken()
	default:
		wait := sp.failed()
		sp.p.log.Info("standby connection failed", "proxy", sp.proxy, "retry_in", wait.String(), "err", err)
	}
}

package engine

import (
	"net/netip"
	"time"

	"epsproxy/proxy/wire"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
)

// phase is where a connection is in its life. Only its own loop changes it.
type phase uint8

const (
	phaseHello     phase = iota // public: reading the ClientHello
	phaseWaiting                // public: matched, token filed, waiting for the private side
	phaseToken                  // internal: reading the 32 token bytes
	phaseHandedOff              // dup'ed out of gnet; gnet's close must not touch anything else
	phaseClosed
)

func (p phase) String() string {
	return [...]string{"hello", "waiting", "token", "handed-off", "closed"}[p]
}

// conn is the engine's state for one gnet connection, stored in the connection's context.
type conn struct {
	c        gnet.Conn
	loop     *loop
	public   bool
	phase    phase
	capped   bool // counted by the phase's cap (phaseCap.enter said capOK)
	deadline time.Time
	list     *deadlines // the list holding the conn, nil when none
	prev     *conn
	next     *conn
	src      netip.Addr   // the peer's address, for the log
	key      netip.Prefix // the peer's source (netsrc), for the per-source limits and caps
	token    wire.Token
	hello    *bytebufferpool.ByteBuffer // bytes to replay to the private side
	domain   string
	operator string
}

// release returns pooled memory; the conn must not be used for I/O afterwards.
func (s *conn) release() {
	if s.hello != nil {
		bytebufferpool.Put(s.hello)
		s.hello = nil
	}
}

// deadlines is a loop's list of connections in one phase, ordered by deadline. Every conn in a
// list got the same timeout when it joined, so appending keeps the order and the sweep only looks
// at the head: O(1) to add, remove and expire. Only its loop touches it.
type deadlines struct {
	head, tail *conn
	n          int
}

func (d *deadlines) push(s *conn, at time.Time) {
	s.unlink()
	s.deadline = at
	s.list = d
	s.prev = d.tail
	s.next = nil
	if d.tail != nil {
		d.tail.next = s
	} else {
		d.head = s
	}
	d.tail = s
	d.n++
}

func (s *conn) unlink() {
	d := s.list
	if d == nil {
		return
	}
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		d.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		d.tail = s.prev
	}
	s.prev, s.next, s.list = nil, nil, nil
	d.n--
}

// expired pops the head if its deadline has passed.
func (d *deadlines) expired(now time.Time) *conn {
	s := d.head
	if s == nil || now.Before(s.deadline) {
		return nil
	}
	s.unlink()
	return s
}

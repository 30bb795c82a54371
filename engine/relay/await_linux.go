package relay

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// Awaited sockets: a socket whose peer is to speak first, held by a loop until it does, and then
// paired on that loop with a socket its Awaiter chooses. The private proxy keeps its standby
// sockets this way: dialed in to the public proxy, greeted with a token, then waiting for a
// client's hello; no goroutine waits on them, and the client's first bytes are read, routed and
// relayed on the loop that saw them arrive.

// ErrMore is what an Awaiter's First returns to wait for more bytes.
var ErrMore = errors.New("relay: more bytes wanted")

// ErrAwaitTimeout is given to Gone when an awaited socket was not paired within its wait.
var ErrAwaitTimeout = errors.New("relay: nothing arrived in time")

// awaitSweep is how often a loop that holds awaited sockets checks their deadlines when no idle
// timeout makes it sweep anyway.
const awaitSweep = time.Second

// An Awaiter decides what becomes of a socket given to Relay.Await. Its methods run on the loop
// that holds the socket, one call at a time: they must not block. They may call Add and Await.
type Awaiter interface {
	// First is called with everything the peer has sent so far, each time more arrives. To pair
	// the socket it returns a Pairing: another socket, which the relay owns from then on (a
	// connect may still be under way: data is delivered once it completes, and a failed connect
	// ends the pair with an error), and what that socket gets first. The socket and the peer are
	// then relayed like a pair from Add(fd, peer, nil, head+data[skip:], tag). It returns ErrMore
	// to wait for more bytes (at most MaxPrefix in all), or any other error to have the socket
	// closed: an Awaiter that takes the connection elsewhere duplicates fd first, since the relay
	// closes its own descriptor without a reset. data is only valid during the call.
	First(fd int, data []byte) (Pairing, error)
	// Gone reports an awaited socket closed before First paired it: io.EOF (the peer closed
	// it), ErrAwaitTimeout, ErrClosed (Close or Drain), ErrPrefixTooLarge, or the socket's error
	// (a failed connect among them). The descriptor is already closed.
	Gone(err error)
}

// A Pairing is what First pairs an awaited socket with.
type Pairing struct {
	// Peer is the socket to pair with.
	Peer int
	// Tag is returned in the pair's Stats.
	Tag any
	// Skip leading bytes of the data First was given are not delivered to Peer: a header the
	// Awaiter read for itself. At most len(data).
	Skip int
	// Head is delivered to Peer before the data; at most MaxPrefix bytes. The relay copies it
	// before First returns to the loop, so it may point into the Awaiter's own memory.
	Head []byte
	// Keep, for a socket given to AwaitFramed, takes it back once an end frame went each way
	// (see AddFramed); nil closes it then.
	Keep Keeper
}

// awaiting is the state of a slot that holds an awaited socket in fd[0] and no fd[1] yet.
type awaiting struct {
	a        Awaiter
	greeting []byte // not sent yet
	got      []byte // bytes First asked more after, kept between reads
	until    int64  // loop clock deadline
	framed   bool   // AwaitFramed: the peer's bytes come in frames
	fr       frameState
	ended    bool // an end frame came with the first bytes
}

// Await hands the relay a stream socket, connected or with a non-blocking connect under way
// (from Connect, say), whose peer speaks first. The relay sends greeting as soon as the socket
// is writable (Await copies it; at most MaxPrefix bytes), then gives everything the peer sends
// to a.First until First pairs the socket or has it closed, or the socket ends (a.Gone). A
// socket First has not paired within wait of the Await call is closed with ErrAwaitTimeout.
// What is left of the greeting when First pairs the socket still goes out before anything
// from the peer. Awaited sockets count toward MaxPairs while they wait; Drain and Close close
// them at once.
//
// On error (ErrClosed, ErrFull, ErrBadFD, ErrPrefixTooLarge, a non-positive wait) Await closes
// fd and calls nothing of a. Safe from any goroutine, an Awaiter's methods and OnDone included.
func (r *Relay) Await(fd int, greeting []byte, wait time.Duration, a Awaiter) error {
	err := r.await(fd, greeting, wait, a, false)
	if err != nil {
		closeFD(fd)
	}
	return err
}

// AwaitFramed is Await for a framed socket (frame.go): the greeting goes out as it is, the peer's
// bytes come in frames, and First sees their payload alone. The pair First makes frames the
// awaited socket's side like AddFramed does its b, and hands the socket to Pairing.Keep once an
// end frame went each way, to be awaited again for the peer's next stream, say.
func (r *Relay) AwaitFramed(fd int, greeting []byte, wait time.Duration, a Awaiter) error {
	err := r.await(fd, greeting, wait, a, true)
	if err != nil {
		closeFD(fd)
	}
	return err
}

func (r *Relay) await(fd int, greeting []byte, wait time.Duration, a Awaiter, framed bool) error {
	switch {
	case r.closed.Load() || r.draining.Load():
		return ErrClosed
	case a == nil || wait <= 0:
		return fmt.Errorf("%w: Await needs an Awaiter and a positive wait", ErrBadFD)
	case fd > 1<<31-1:
		return fmt.Errorf("%w: descriptor out of range", ErrBadFD)
	case len(greeting) > MaxPrefix:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrPrefixTooLarge, len(greeting), MaxPrefix)
	}
	if err := r.checkFD(fd); err != nil {
		return err
	}
	if !r.reserve() {
		return ErrFull
	}
	r.awaited.Add(1)
	aw := &awaiting{a: a, until: int64(wait), framed: framed} // until: made absolute by the loop
	if len(greeting) > 0 {
		aw.greeting = append([]byte(nil), greeting...)
	}
	l := r.loopFor(int32(fd))
	if !l.enqueue(pending{fd: [2]int32{int32(fd), -1}, await: aw}) {
		r.awaited.Add(-1)
		r.release()
		return ErrClosed
	}
	return nil
}

// Awaiting returns the sockets given to Await that are still waiting for their peer. Safe from
// any goroutine.
func (r *Relay) Awaiting() int { return int(r.awaited.Load()) }

// startAwait makes a queued awaited socket's record (enqueue registered it) and greets.
func (l *loop) startAwait(pd pending) {
	p := l.slab.claim(pd.ref)
	p.fd = pd.fd
	p.live = true
	p.await = pd.await
	p.await.until = l.now + min(p.await.until, math.MaxInt64-l.now)
	p.last = l.now
	p.dir[0].pipe, p.dir[1].pipe = noPipe, noPipe
	l.awaitN++
	if l.nextSweep == 0 {
		l.nextSweep = l.now + int64(awaitSweep)
	}
	p.wantOut[0] = pd.wantsRoom()
	if pd.unregistered {
		if err := l.register(p, 0); err != nil {
			l.dropAwait(p, err)
			return
		}
	}
	// A connected socket takes the greeting now; a connecting one reports EPOLLOUT once
	// connected (wantOut asked for it, or greet does when a send finds it not ready).
	p.writable[0] = true
	l.greet(p)
}

// awaitEvent serves an event on an awaited socket.
func (l *loop) awaitEvent(p *pair, events uint32) {
	if events&unix.EPOLLERR != 0 {
		if err := socketError(p.fd[0]); err != nil {
			l.dropAwait(p, err)
			return
		}
	}
	if events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.writable[0] = true
		if !l.greet(p) {
			return
		}
	}
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.fin[0] = true // for the pair this socket becomes (see readFrames)
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.hear(p, events&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0)
	}
}

// greet sends what is left of the greeting; false if the socket was dropped.
func (l *loop) greet(p *pair) bool {
	aw := p.await
	for len(aw.greeting) > 0 && p.writable[0] {
		n, err := send(p.fd[0], aw.greeting)
		switch {
		case err == unix.EAGAIN:
			if err := l.askRoom(p, 0); err != nil {
				l.dropAwait(p, err)
				return false
			}
			p.writable[0] = false
		case err == unix.EINTR:
		case err != nil:
			l.dropAwait(p, err)
			return false
		default:
			aw.greeting = aw.greeting[n:]
		}
	}
	if len(aw.greeting) == 0 {
		aw.greeting = nil
	}
	return true
}

// hear reads what the peer sent and asks the Awaiter what to do with it. fin says the event
// also reported the peer's end of stream, which a short read leaves unread.
func (l *loop) hear(p *pair, fin bool) {
	aw := p.await
	buf := l.scratch()
	room := min(len(buf), MaxPrefix+1-len(aw.got))
	n, err := recv(p.fd[0], buf[:room], 0)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		l.dropAwait(p, err)
		return
	case n == 0:
		l.dropAwait(p, io.EOF)
		return
	}
	p.last = l.now
	data := buf[:n]
	if aw.framed {
		var end bool
		data, end, err = aw.fr.deframe(data)
		switch {
		case errors.Is(err, ErrAborted) || err == nil && end && len(data)+len(aw.got) == 0:
			// The peer's stream ended before it said anything First could pair (a client that
			// reset at once): this side's end goes back, and the socket waits for the next.
			l.restartAwait(p)
			return
		case err == nil && end:
			aw.ended = true
		case err == nil && len(data) == 0:
			if n == room || fin {
				l.hear(p, fin) // only framing so far
			}
			return
		}
		if err != nil {
			l.dropAwait(p, err)
			return
		}
	}
	if aw.got != nil {
		aw.got = append(aw.got, data...)
		data = aw.got
	}
	if len(data) > MaxPrefix {
		l.dropAwait(p, ErrPrefixTooLarge)
		return
	}
	pg, err := aw.a.First(int(p.fd[0]), data)
	switch {
	case errors.Is(err, ErrMore) && aw.ended:
		l.restartAwait(p) // no more is coming
		return
	case errors.Is(err, ErrMore):
		if aw.got == nil {
			aw.got = append(make([]byte, 0, 2*len(data)), data...)
		}
		// Bytes (or the end of stream) may still be queued; the edge that told of them is spent.
		if n == room || fin {
			l.hear(p, fin)
		}
		return
	case err != nil:
		// Closed without a reset: the Awaiter may hold a duplicate that carries it on.
		l.releaseAwait(p)
		return
	}
	l.pairAwait(p, pg, data, n < room && !fin)
}

// pairAwait turns an awaited socket into side a of a pair with pg.Peer as side b; pg.Head and
// then data past pg.Skip go to b first, and what is left of the greeting to a. drained says the
// last read emptied a's receive queue, end of stream included.
func (l *loop) pairAwait(p *pair, pg Pairing, data []byte, drained bool) {
	l.awaitN--
	l.r.awaited.Add(-1)
	aw := p.await
	rest := aw.greeting
	p.await = nil
	p.tag = pg.Tag
	if aw.framed {
		p.frm, p.keep = 1, pg.Keep
		p.dir[0].fr = aw.fr
		p.dir[0].eof, p.dir[0].ended = aw.ended, aw.ended
	}
	peer := pg.Peer
	var err error
	switch {
	case peer > 1<<31-1:
		err = ErrBadFD
	case pg.Skip < 0 || pg.Skip > len(data):
		err = fmt.Errorf("%w: skip %d of %d bytes", ErrBadFD, pg.Skip, len(data))
	case len(pg.Head) > MaxPrefix:
		err = fmt.Errorf("%w: head of %d bytes, limit %d", ErrPrefixTooLarge, len(pg.Head), MaxPrefix)
	default:
		err = l.r.checkFD(peer)
	}
	if err != nil {
		closeFD(peer)
		l.fail(p, "peer", 1, err)
		return
	}
	p.fd[1] = int32(peer)
	var toPeer []byte
	if data = data[pg.Skip:]; len(pg.Head)+len(data) > 0 {
		toPeer = append(append(make([]byte, 0, len(pg.Head)+len(data)), pg.Head...), data...)
	}
	if toPeer != nil || rest != nil {
		p.pre = &[2][]byte{toPeer, rest}
	}
	p.readable = [2]bool{!drained, false}
	p.writable[1] = true // optimistic: a connecting socket answers EAGAIN
	ev := l.registration(p, 1)
	if err := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, p.fd[1], &ev); err != nil {
		l.fail(p, "epoll_ctl", 1, err)
		return
	}
	if l.pump(p, 0) {
		l.pump(p, 1)
	}
}

// restartAwait answers a framed peer whose stream ended (an end or abort frame) before First
// paired the socket with an abort frame for this side, and waits for its next stream from
// scratch: what First saw of the ended one is forgotten.
func (l *loop) restartAwait(p *pair) {
	aw := p.await
	if len(aw.greeting) >= MaxPrefix {
		// A peer that ends stream after stream without reading the answers: it would grow the
		// answers without bound.
		l.dropAwait(p, ErrBadFrame)
		return
	}
	aw.got, aw.fr, aw.ended = nil, frameState{}, false
	aw.greeting = AppendAbort(aw.greeting)
	l.greet(p)
}

// dropAwait closes an awaited socket that ended before First paired it and tells its Awaiter.
func (l *loop) dropAwait(p *pair, err error) {
	a := p.await.a
	l.releaseAwait(p)
	a.Gone(err)
}

func (l *loop) releaseAwait(p *pair) {
	_ = epollCtl(l.epfd, unix.EPOLL_CTL_DEL, p.fd[0], nil)
	closeRaw(p.fd[0])
	l.awaitN--
	l.r.awaited.Add(-1)
	l.freeSlot(l.slab.release(p.slot))
	l.r.release()
}

// dropAllAwait closes every awaited socket of the loop (Drain).
func (l *loop) dropAllAwait() {
	for i := int32(0); i < l.slab.used && l.awaitN > 0; i++ {
		if p := l.slab.at(i); p.live && p.await != nil {
			l.dropAwait(p, ErrClosed)
		}
	}
}

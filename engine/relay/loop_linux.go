package relay

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// maxEvents is how many epoll events one wait returns; more stay queued in
	// the kernel for the next wait.
	maxEvents = 256
	// wakeSlot marks the eventfd's epoll registration (pair slots are >= 0).
	wakeSlot = -1
	// readEvents is what a socket is registered for: its peer's bytes or end of
	// stream (RDHUP reports a peer's FIN early), edge-triggered, so the loop never
	// calls epoll_ctl per chunk. Room to write is asked for (writeEvents) only once
	// a write found the socket full, or when something waits to be written as the
	// socket is registered (see full): a writable socket reports an edge for every
	// ACK that frees room, events the loop has nothing to do with (several per
	// connection), and once asked for, it stays asked for.
	readEvents  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	writeEvents = readEvents | unix.EPOLLOUT
)

// wakeValue is what Add writes to the eventfd: any non-zero count wakes the
// loop, whatever the byte order.
var wakeValue = [8]byte{1}

// loop is one epoll instance and the goroutine that serves it, with the pairs,
// pipes and buffer it alone touches.
//
// The goroutine does not block in epoll_wait. The epoll descriptor is itself
// registered with Go's network poller (an epoll set is pollable: it reports
// readable while it holds events), and the goroutine parks there like any
// goroutine waiting on a socket, then collects the events with non-blocking
// epoll_wait calls. A goroutine blocked in a system call holds its P in the
// syscall state, which keeps the runtime's sysmon thread from ever sleeping
// deeply: it wakes every 20 µs to 10 ms, retakes the P and preempts the loop
// whose scheduling tick never moves, and that churn of nanosleep, futex and
// tgkill cost a tenth of the public proxy's CPU per relayed connection. A parked
// goroutine holds no P, and waking it is one netpoll event.
type loop struct {
	r      *Relay
	idx    int // in r.loops: Stats.Loop and Visit's loop
	epfd   int
	ep     *os.File        // owns epfd; its poll descriptor parks the loop goroutine
	rc     syscall.RawConn // ep's, for the non-blocking epoll_wait calls
	exited bool            // set by exit: the loop must return
	armed  int64           // the nextSweep the poller's read deadline is set for
	// takeSoon: a Keeper gave a socket back to this loop (see handBack); its entry is taken
	// from the queue before the loop parks again.
	takeSoon bool

	mu       sync.Mutex // guards queue, slots, visits, closed, dropWait, evfd, keptBack and keptHeld
	queue    []pending
	slots    slots    // the slab's slot names: enqueue takes one per entry, the loop gives them back
	visits   []*visit // Visit calls waiting for this loop
	closed   bool
	dropWait bool // Drain: close the awaited sockets
	evfd     int  // written under mu only, so it is never written after it is closed
	// kept is the descriptor handBack is giving a Keeper, while Keep runs, and -1 otherwise;
	// written under mu by the loop, read by loopFor as a hint. keptBack: Keep gave it straight
	// back to this loop, whose epoll set still holds it. keptHeld: Keep left it in the set under
	// a held token (Hold).
	kept     atomic.Int32
	keptBack bool
	keptHeld bool

	// Published for PipesInUse/PipesOpen.
	pipesInUse atomic.Int64
	pipesOpen  atomic.Int64
	// gone is closed when run returns: the loop's last OnDone has run (see Visit).
	gone chan struct{}

	// Loop goroutine only.
	slab      slab
	pipes     pipePool
	spare     []pending // the other half of the queue double buffer
	ready     []readyEntry
	readyNext []readyEntry
	missed    []unix.EpollEvent // a batch's events that found no pair: maybe one still queued
	buf       []byte            // bounded-copy buffer, allocated on first use
	events    []unix.EpollEvent
	epoch     time.Time
	now       int64 // nanoseconds since epoch, read once per wait
	nextSweep int64 // 0: no sweep due (no timeouts, no awaited sockets)
	awaitN    int   // awaited sockets held
}

// readyEntry is a direction that stopped only because it used up its turn.
type readyEntry struct{ slot, tok int32 }

func newLoop(r *Relay, idx int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("relay: epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with the runtime poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("relay: epoll fd: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "relay-epoll")
	rc, err := ep.SyscallConn()
	if err == nil {
		// Deadlines only work on descriptors the runtime poller took.
		err = ep.SetReadDeadline(time.Time{})
	}
	if err != nil {
		_ = ep.Close()
		return nil, fmt.Errorf("relay: the runtime poller does not take the epoll fd: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = ep.Close()
		return nil, fmt.Errorf("relay: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(evfd)
		_ = ep.Close()
		return nil, fmt.Errorf("relay: epoll_ctl eventfd: %w", err)
	}
	l := &loop{
		r:      r,
		idx:    idx,
		gone:   make(chan struct{}),
		epfd:   epfd,
		ep:     ep,
		rc:     rc,
		evfd:   evfd,
		pipes:  pipePool{max: r.cfg.maxPipes, size: r.cfg.pipeSize},
		events: make([]unix.EpollEvent, maxEvents),
		epoch:  time.Now(),
	}
	l.kept.Store(-1)
	return l, nil
}

// closeFDs releases a loop that never ran.
func (l *loop) closeFDs() {
	_ = unix.Close(l.evfd)
	_ = l.ep.Close()
}

// enqueue hands a pair or an awaited socket to the loop; false once the loop is
// closed. Any goroutine.
//
// The entry's slot is chosen here and its sockets registered for it, once, rather
// than by the loop: the loop takes the queue on their first event, which for the
// public proxy's pair is the private side's answer to the hello Add has just sent,
// instead of on a wake-up of its own a millisecond earlier, and it finds the pair
// through that event as through any later one (see poll). Room to write is only
// asked for when Add left something unsent (or Await has a greeting to send), since
// a writable socket reports it at once. Registering under mu keeps the loop from
// seeing an event before it can take the entry. If a registration fails the entry
// is started on an eventfd wake-up, and start registers what is missing.
//
// The socket a Keeper is being given by this loop (see handBack) is still in the set,
// under the slot of the pair it left, and the loop takes the queue before it parks
// again: its registration is pointed at the new slot instead of added; so is a held
// socket's (AddFramedHeld).
func (l *loop) enqueue(pd pending) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	pd.ref = l.slots.take()
	events := uint32(readEvents)
	if pd.wantsRoom() {
		events = writeEvents
	}
	for side, fd := range pd.fd {
		if fd < 0 {
			continue
		}
		s, t := token(pd.ref.slot, pd.ref.gen, side)
		ev := unix.EpollEvent{Events: events, Fd: s, Pad: t}
		op := unix.EPOLL_CTL_ADD
		switch {
		case fd == l.kept.Load():
			l.keptBack = true
			op = unix.EPOLL_CTL_MOD
		case side == 1 && pd.held:
			op = unix.EPOLL_CTL_MOD
		}
		err := epollCtl(l.epfd, op, fd, &ev)
		if err == unix.ENOENT && op == unix.EPOLL_CTL_MOD {
			err = epollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev) // not held here after all
		}
		if err != nil {
			pd.unregistered = true
		}
	}
	l.queue = append(l.queue, pd)
	if pd.unregistered {
		l.wake()
	}
	return true
}

// freeSlot gives a slot back for the next entry.
func (l *loop) freeSlot(r slotRef) {
	l.mu.Lock()
	l.slots.put(r)
	l.mu.Unlock()
}

// dropAwaited asks the loop to close its awaited sockets (Drain). Any goroutine.
func (l *loop) dropAwaited() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed && !l.dropWait {
		l.dropWait = true
		l.wake()
	}
}

// stop asks the loop to close everything and return. Any goroutine.
func (l *loop) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.wake()
	}
}

// wake makes epoll_wait return. Callers hold mu. The eventfd is non-blocking and
// its counter cannot realistically overflow, so the write cannot block.
func (l *loop) wake() {
	eventfdWrite(l.evfd, &wakeValue)
}

func (l *loop) run() {
	defer l.r.wg.Done()
	defer close(l.gone)
	defer l.ep.Close() // after exit: closing it inside the poll callback would wait for itself
	if l.r.sweeps() {
		l.nextSweep = int64(l.r.sweepInterval())
	}
	for !l.exited {
		// The next sweep is the read deadline: the poller wakes the loop for it.
		if l.armed != l.nextSweep {
			l.armed = l.nextSweep
			var at time.Time
			if l.armed > 0 {
				at = l.epoch.Add(time.Duration(l.armed))
			}
			_ = l.ep.SetReadDeadline(at)
		}
		err := l.rc.Read(l.poll)
		switch {
		case l.exited:
		case errors.Is(err, os.ErrDeadlineExceeded):
			l.now = int64(time.Since(l.epoch))
			l.sweep()
			// A queued pair whose sockets stayed silent has had no event to start it, and the
			// sweep may have ended a pair whose Keeper gave its socket back (handBack).
			if _, closed := l.takeAll(); closed {
				l.exit(ReasonShutdown, nil)
				continue
			}
			l.publish()
		case err != nil:
			l.exit(ReasonFailed, &PairError{Op: "poll", Err: err})
		}
	}
}

// poll serves every event the epoll set holds; false parks the goroutine until
// the set reports new events, true returns to run, which stops or moves the read
// deadline. It drains the set before it returns false: the runtime poller sees
// the set edge-triggered, and every new event in it counts as an edge.
func (l *loop) poll(uintptr) bool {
	for {
		n, err := epollWait(l.epfd, l.events)
		if err != nil && err != unix.EINTR {
			l.exit(ReasonFailed, &PairError{Op: "epoll_wait", Err: err})
			return true
		}
		l.now = int64(time.Since(l.epoch))
		woken := false
		for i := range n {
			switch ev := &l.events[i]; {
			case ev.Fd == wakeSlot:
				woken = true
			case isHeld(ev):
				l.heldEvent(ev)
			case !l.event(ev):
				// A pair that ended earlier, or one still in the queue: see below.
				l.missed = append(l.missed, *ev)
			}
		}
		if woken {
			eventfdRead(l.evfd) // reset before taking the queue: see wake
			if l.nextSweep == 0 && l.r.sweeps() {
				// SetTimeouts turned the idle timeouts on: poll returns below to arm the sweep.
				l.nextSweep = l.now + int64(l.r.sweepInterval())
			}
		}
		if woken || len(l.missed) > 0 || l.takeSoon {
			_, closed := l.takeAll()
			if closed {
				l.missed = l.missed[:0]
				l.exit(ReasonShutdown, nil)
				return true
			}
			// The pairs just started get the events that came before them; enqueue
			// registered their sockets before it queued them, under mu, so every such
			// event is for an entry takeAll has started. A pair that ended misses again.
			for i := range l.missed {
				l.event(&l.missed[i])
			}
			l.missed = l.missed[:0]
		}
		l.runReady()
		if l.nextSweep > 0 && l.now >= l.nextSweep {
			l.sweep()
		}
		if n < len(l.events) && len(l.ready) == 0 && !l.takeSoon {
			l.publish()
			return l.armed != l.nextSweep
		}
	}
}

func (l *loop) publish() {
	l.pipesInUse.Store(int64(l.pipes.inUse))
	l.pipesOpen.Store(int64(l.pipes.open))
}

// takeAll takes the queue, and again for as long as a pair it started ended at once and its
// Keeper gave the socket back to this loop (handBack), which needs its entry started before the
// loop parks.
func (l *loop) takeAll() (started, closed bool) {
	for {
		l.takeSoon = false
		s, c := l.takeQueue()
		started = started || s
		if c || !l.takeSoon {
			return started, c
		}
	}
}

// takeQueue starts the queued pairs and awaited sockets, serves the Visit calls
// waiting (unless the loop must stop: exit serves them), and reports whether it
// started any pair and whether the loop must stop.
func (l *loop) takeQueue() (started, closed bool) {
	l.mu.Lock()
	q := l.queue
	l.queue = l.spare[:0]
	closed, drop := l.closed, l.dropWait
	var visits []*visit
	if !closed {
		visits, l.visits = l.visits, nil
	}
	l.mu.Unlock()
	started = len(q) > 0
	for i := range q {
		switch {
		case closed || drop && q[i].await != nil:
			l.reject(q[i], ReasonShutdown, nil)
		case q[i].await != nil:
			l.startAwait(q[i])
		default:
			l.start(q[i])
		}
		q[i] = pending{}
	}
	l.spare = q[:0]
	if drop && l.awaitN > 0 {
		l.dropAllAwait()
	}
	for _, v := range visits {
		l.serveVisit(v)
	}
	return started, closed
}

// start makes a queued pair's record, registers what enqueue could not, and moves
// whatever is already there.
func (l *loop) start(pd pending) {
	p := l.slab.claim(pd.ref)
	p.fd = pd.fd
	p.live = true
	// A socket that had bytes (or its peer's FIN) when enqueue registered it
	// reported them in an epoll_wait, which poll hands to the pair once started,
	// so reading now would only cost an EAGAIN per side on the usual pair, whose
	// sockets are quiet when added. Writing is optimistic: the prefix goes out at
	// once.
	p.readable = [2]bool{false, false}
	p.writable = [2]bool{true, true}
	p.dir[0].pipe, p.dir[1].pipe = noPipe, noPipe
	p.last = l.now
	p.pre = pd.pre
	p.tag = pd.tag
	p.frm, p.keep, p.preHdr = pd.frm, pd.keep, pd.preHdr
	p.dir[0].bytes, p.dir[1].bytes = int64(pd.sent[0]), int64(pd.sent[1])
	p.wantOut = [2]bool{pd.wantsRoom(), pd.wantsRoom()}
	if pd.err != nil {
		l.finish(p, ReasonFailed, pd.err)
		return
	}
	for side := 0; pd.unregistered && side < 2; side++ {
		if err := l.register(p, side); err != nil {
			l.fail(p, "epoll_ctl", side, err)
			return
		}
	}
	if l.pump(p, 0) {
		l.pump(p, 1)
	}
}

// register makes side's registration for p, or points an earlier one at p (enqueue
// could not register one of p's sockets); for room to write too if p.wantOut says so.
func (l *loop) register(p *pair, side int) error {
	ev := l.registration(p, side)
	err := epollCtl(l.epfd, unix.EPOLL_CTL_MOD, p.fd[side], &ev)
	if err == unix.ENOENT {
		err = epollCtl(l.epfd, unix.EPOLL_CTL_ADD, p.fd[side], &ev)
	}
	return err
}

// registration is side's epoll event: p's slot, and room to write if p.wantOut asks for it.
func (l *loop) registration(p *pair, side int) unix.EpollEvent {
	s, t := token(p.slot, p.gen, side)
	ev := unix.EpollEvent{Events: readEvents, Fd: s, Pad: t}
	if p.wantOut[side] {
		ev.Events = writeEvents
	}
	return ev
}

// full records that side's socket took nothing more (EAGAIN) and, the first time, asks its
// registration for room to write, which reports at once if room came back in between. It
// reports whether p is still alive.
func (l *loop) full(p *pair, side int) bool {
	p.writable[side] = false
	if err := l.askRoom(p, side); err != nil {
		return l.fail(p, "epoll_ctl", side, err)
	}
	return true
}

// askRoom adds room to write to side's registration, unless it has it already.
func (l *loop) askRoom(p *pair, side int) error {
	if p.wantOut[side] {
		return nil
	}
	p.wantOut[side] = true
	ev := l.registration(p, side)
	return epollCtl(l.epfd, unix.EPOLL_CTL_MOD, p.fd[side], &ev)
}

// reject ends a pair or an awaited socket that never started, and frees the slot it was given,
// a generation later, so that events its sockets reported meanwhile miss.
func (l *loop) reject(pd pending, reason Reason, err error) {
	l.freeSlot(slotRef{slot: pd.ref.slot, gen: pd.ref.gen + 1})
	if pd.await != nil {
		closeRaw(pd.fd[0])
		l.r.awaited.Add(-1)
		l.r.release()
		pd.await.a.Gone(ErrClosed)
		return
	}
	for _, fd := range pd.fd {
		abort(fd)
		closeRaw(fd)
	}
	l.r.finished(Stats{Reason: reason, Err: err, Tag: pd.tag, Loop: l.idx})
	if pd.keep != nil {
		pd.keep.Keep(-1)
	}
}

// event records what epoll reported for one socket and moves both directions
// that touch it. False: no live pair has that slot and generation (its pair ended,
// or is still queued).
func (l *loop) event(ev *unix.EpollEvent) bool {
	p := l.slab.lookup(ev.Fd, ev.Pad)
	if p == nil {
		return false
	}
	if p.await != nil {
		l.awaitEvent(p, ev.Events)
		return true
	}
	side := int(ev.Pad & 1)
	if ev.Events&unix.EPOLLERR != 0 {
		if err := socketError(p.fd[side]); err != nil {
			l.fail(p, "socket", side, err)
			return true
		}
	}
	if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.fin[side] = true
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.readable[side] = true
		if p.dir[side].ended && !p.dir[1-side].shut && !l.afterEnd(p, side) {
			return true
		}
	}
	if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.writable[side] = true
	}
	// The direction into this socket first: it may free a pipe.
	if l.pump(p, 1-side) {
		l.pump(p, side)
	}
	return true
}

// requeue gives a direction that used up its turn another one after this batch.
func (l *loop) requeue(p *pair, d int) {
	if p.dir[d].queued {
		return
	}
	p.dir[d].queued = true
	s, t := token(p.slot, p.gen, d)
	l.ready = append(l.ready, readyEntry{s, t})
}

func (l *loop) runReady() {
	q := l.ready
	l.ready = l.readyNext[:0]
	for _, e := range q {
		p := l.slab.lookup(e.slot, e.tok)
		if p == nil {
			continue
		}
		d := int(e.tok & 1)
		p.dir[d].queued = false
		l.pump(p, d)
	}
	l.readyNext = q[:0]
}

// sweep closes the pairs that moved no byte for IdleTimeout, or for FinTimeout once either
// side has finished sending.
func (l *loop) sweep() {
	idle, fin := l.r.idle.Load(), l.r.fin.Load()
	for i := range l.slab.used {
		p := l.slab.at(i)
		if !p.live {
			continue
		}
		quiet := l.now - p.last
		switch {
		case p.await != nil:
			if l.now >= p.await.until {
				l.dropAwait(p, ErrAwaitTimeout)
			}
		case fin > 0 && (p.dir[0].eof || p.dir[1].eof) && quiet >= fin:
			l.finish(p, ReasonFinIdle, nil)
		case idle > 0 && quiet >= idle:
			l.finish(p, ReasonIdle, nil)
		}
	}
	switch {
	case l.r.sweeps():
		l.nextSweep = l.now + int64(l.r.sweepInterval())
	case l.awaitN > 0:
		l.nextSweep = l.now + int64(awaitSweep)
	default:
		l.nextSweep = 0
	}
}

// fail ends a pair on an error and returns false, for pump's "still alive".
func (l *loop) fail(p *pair, op string, side int, err error) bool {
	pe := &PairError{Op: op, Side: sideName[side], Err: err}
	if p.frm != 0 && side != int(p.frm)-1 && p.cut == nil {
		// The unframed side of a framed pair: the stream is cut, the framed socket kept.
		return l.cut(p, pe)
	}
	l.finish(p, ReasonFailed, pe)
	return false
}

var sideName = [2]string{"a", "b"}

// finish closes a pair's sockets and pipes, frees its slot and reports it. Only a
// pair that is done closes without a reset: see abort.
func (l *loop) finish(p *pair, reason Reason, err error) {
	if reason == ReasonDone && p.cut != nil {
		reason, err = ReasonFailed, p.cut // ended by end or abort frames, after a cut
	}
	abortive := reason != ReasonDone
	// clean: both directions of the framed side ended with an end or abort frame, so nothing of
	// this pair is left in it either way: its keeper has it next, or it closes without a reset.
	clean := -1
	if f := int(p.frm) - 1; f >= 0 && p.dir[f].ended && p.dir[1-f].shut && (!abortive || p.cut != nil && err == p.cut) {
		clean = f
	}
	kept := -1
	if p.keep != nil {
		kept = clean
	}
	for side, fd := range p.fd {
		if side == kept {
			continue // handBack deregisters it, unless its Keeper gives it back to this loop
		}
		// A pair that is done has both streams at their end, and the relay holds their only
		// descriptors (a caller that duplicated one closes its own as soon as Add returns):
		// closing the last descriptor drops the registration. A pair cut short may still
		// have a caller's duplicate about, so it is deregistered first. Either way a
		// registration that outlived its pair reports events with the freed slot's old
		// generation, which lookup ignores.
		if abortive && side != clean {
			_ = epollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			abort(fd)
		}
		closeRaw(fd)
	}
	for d := range p.dir {
		if dr := &p.dir[d]; dr.pipe != noPipe {
			l.pipes.put(dr.pipe, dr.inPipe == 0)
		}
	}
	s := Stats{AToB: p.dir[0].bytes, BToA: p.dir[1].bytes, Reason: reason, Err: err, Tag: p.tag, Loop: l.idx, Kept: kept >= 0}
	keep := p.keep
	keptFD := int32(-1)
	if kept >= 0 {
		keptFD = p.fd[kept]
	}
	l.freeSlot(l.slab.release(p.slot))
	l.r.finished(s)
	switch {
	case keptFD >= 0:
		l.handBack(keep, keptFD)
	case keep != nil:
		keep.Keep(-1)
	}
}

// handBack gives a pair's clean framed socket to its Keeper. The socket stays in the epoll set
// while Keep runs, its registration still pointing at the freed slot, whose events lookup ignores:
// a Keeper that gives it straight back to this loop (the private proxy waits for the next client
// on the standby socket its last client used) costs no epoll_ctl here, and enqueue re-points it
// at its new slot with one EPOLL_CTL_MOD instead of an ADD, which reports again whatever arrived
// in between. So does a Keeper that holds it (Hold): it stays under its held token. A socket the
// Keeper kept otherwise, closed or gave elsewhere leaves the set when Keep returns.
func (l *loop) handBack(k Keeper, fd int32) {
	l.mu.Lock()
	l.kept.Store(fd)
	l.keptBack, l.keptHeld = false, false
	l.mu.Unlock()
	k.Keep(int(fd))
	l.mu.Lock()
	back := l.keptBack
	if !back && !l.keptHeld {
		// The descriptor may already be closed, or reused by a socket this loop never held:
		// either way it is not in the set (a socket enqueued here under this number while Keep
		// ran counts as given back, and start adds it if it is not there).
		_ = epollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	l.kept.Store(-1)
	l.keptBack, l.keptHeld = false, false
	l.mu.Unlock()
	if back {
		l.takeSoon = true
	}
}

// scratchSize caps the loop's buffer: the copy is the fallback when no pipe is free, and a
// pipe's size (a megabyte by default) is for splicing, not for the heap of every loop.
const scratchSize = 64 << 10

// scratch is the loop's one buffer (PipeSize bytes, at most scratchSize), made on first use: the
// bounded copy, an awaited socket's first bytes and dropped frames pass through it, never kept
// between events.
func (l *loop) scratch() []byte {
	if l.buf == nil {
		l.buf = make([]byte, min(l.pipes.size, scratchSize))
	}
	return l.buf
}

// exit closes everything the loop owns; the loop returns right after.
func (l *loop) exit(reason Reason, err error) {
	l.mu.Lock()
	l.closed = true
	q := l.queue
	l.queue = nil
	l.mu.Unlock()
	for _, pd := range q {
		l.reject(pd, reason, err)
	}
	for i := range l.slab.used {
		switch p := l.slab.at(i); {
		case !p.live:
		case p.await != nil:
			l.dropAwait(p, ErrClosed)
		default:
			l.finish(p, reason, err)
		}
	}
	l.pipes.closeAll()
	l.publish()
	l.mu.Lock()
	_ = unix.Close(l.evfd)
	l.evfd = -1
	visits := l.visits
	l.visits = nil
	l.mu.Unlock()
	// Every pair has been reported: these see none live.
	for _, v := range visits {
		l.serveVisit(v)
	}
	l.exited = true // run closes the epoll fd
}

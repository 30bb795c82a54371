package engine

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// A parked socket is closed as soon as its private side dies or speaks: one epoll instance,
// owned by the standby table, watches every parked socket, and one goroutine waits in epoll_wait
// with no timeout. It wakes only when a parked socket's peer closes or resets it (the kernel
// sends FIN or RST for a private proxy that was killed) or sends a byte, and on engine stop; an
// idle pool costs a thread blocked in the kernel and nothing else. (The relay's loops park on the
// runtime poller instead because they wait often and briefly, and each blocking wait costs the
// scheduler a hand-off; this one waits for minutes at a time.) The socket is then closed and
// dropped from its operator's list at once, so the counts are true and the pool's size is what
// the private proxies really hold. (A framed socket parked again after a client is watched by
// the relay loop that served it instead, relay.Hold, and reaches gone the same way, with an id
// from the same counter.)
//
// Descriptors are reused after close, so an event does not name a descriptor: each parked
// socket is registered under an id of its own that is never reused, and the watcher closes a
// socket only if its id is still parked, under the table's mutex. A socket leaves the table
// (taken, swept, closed at stop) only under that mutex and only after EPOLL_CTL_DEL, so an event
// the watcher collected before the socket left finds no id and touches nothing, even if the
// descriptor now belongs to another socket.

// watchEvents is what a parked socket is watched for: a byte or its peer's end of stream (EPOLLIN,
// EPOLLRDHUP); a reset or an error (EPOLLHUP, EPOLLERR) are always reported. Level-triggered: every
// event the watcher acts on closes the socket, so none is reported twice.
const watchEvents = unix.EPOLLIN | unix.EPOLLRDHUP

// stopID is the registration of the eventfd that stops the watcher; parked sockets' ids start at 1.
const stopID = 0

// watchBatch is how many events one epoll_wait returns; more wait in the kernel for the next.
const watchBatch = 64

// setID and eventID put a 64-bit id in an epoll event's data and read it back.
func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// start opens the epoll instance and starts the watcher. Run calls it before any socket can be
// parked; stop undoes it.
func (sb *standby) start() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("standby watcher: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return fmt.Errorf("standby watcher: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, stopID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(evfd)
		_ = unix.Close(epfd)
		return fmt.Errorf("standby watcher: epoll_ctl: %w", err)
	}
	done := make(chan struct{})
	sb.mu.Lock()
	sb.epfd, sb.evfd, sb.watchDone = epfd, evfd, done
	sb.mu.Unlock()
	go sb.watch(epfd, done)
	return nil
}

// stop ends the watcher, closes every parked socket and forgets every token (engine stop). The
// watcher is gone before the epoll instance is closed, so it never waits on a closed descriptor;
// a later park is refused. Calls after the first do nothing more.
func (sb *standby) stop() {
	sb.mu.Lock()
	evfd, done := sb.evfd, sb.watchDone
	sb.watchDone = nil
	if done != nil {
		// Written under mu, so never after the eventfd is closed; non-blocking, and one write
		// cannot fill its counter.
		_, _ = unix.Write(evfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
	sb.mu.Unlock()
	if done != nil {
		<-done
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	for _, op := range sb.ops {
		for _, p := range op.parked {
			sb.unwatch(p)
			_ = unix.Close(p.fd)
		}
	}
	clear(sb.ops)
	clear(sb.tokens)
	if sb.epfd >= 0 {
		_ = unix.Close(sb.epfd)
		_ = unix.Close(sb.evfd)
		sb.epfd, sb.evfd = -1, -1
	}
}

// watch is the watcher goroutine: it closes the parked sockets epoll reports until stop.
func (sb *standby) watch(epfd int, done chan struct{}) {
	defer close(done)
	events := make([]unix.EpollEvent, watchBatch)
	for {
		n, err := unix.EpollWait(epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Not while the instance is open; take and the sweep still find dead sockets.
			return
		}
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == stopID {
				return
			}
			sb.gone(id)
		}
	}
}

// gone closes the parked socket registered under id, if it is still parked: its private side
// closed it, reset it or sent a byte.
func (sb *standby) gone(id uint64) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	operator, ok := sb.watched[id]
	if !ok {
		return // taken, swept or closed since epoll reported it
	}
	op := sb.ops[operator]
	i := -1
	if op != nil {
		i = slices.IndexFunc(op.parked, func(p parked) bool { return p.id == id })
	}
	if i < 0 {
		delete(sb.watched, id) // cannot happen: every watched id is parked
		return
	}
	p := op.parked[i]
	op.parked = slices.Delete(op.parked, i, i+1)
	sb.unwatch(p)
	_ = unix.Close(p.fd)
	sb.goneCount.Add(1)
}

// watchFD registers a socket being parked for operator and returns its id and the relay loop
// that holds it, or -1 when the watcher watches it; false when the watcher is not running
// (before Run, after stop: nothing is parked then) or the kernel refuses. kept: a relay loop is
// handing fd back (see park), so it may stay there. Callers hold mu.
func (sb *standby) watchFD(operator string, fd int, kept bool) (id uint64, loop int, ok bool) {
	if sb.epfd < 0 {
		return 0, -1, false
	}
	sb.lastID++
	id, loop = sb.lastID, -1
	if kept && sb.relay != nil {
		if l, held := sb.relay.Hold(fd, id); held {
			loop = l
		}
	}
	if loop < 0 {
		ev := unix.EpollEvent{Events: watchEvents}
		setID(&ev, id)
		if unix.EpollCtl(sb.epfd, unix.EPOLL_CTL_ADD, fd, &ev) != nil {
			return 0, -1, false
		}
	}
	sb.watched[id] = operator
	sb.parkedN.Add(1)
	return id, loop, true
}

// unwatch deregisters a parked socket that leaves the table (taken, or about to be closed). It
// must come before the descriptor is closed or handed on: the registration belongs to the open
// file, which may outlive the descriptor (a dup elsewhere). A socket a relay loop holds keeps its
// registration there: its descriptor is its only one, so closing it ends the registration, and
// the taker pairs it on that loop (relay.AddFramedHeld). Callers hold mu.
func (sb *standby) unwatch(p parked) {
	delete(sb.watched, p.id)
	sb.parkedN.Add(-1)
	if p.loop < 0 && sb.epfd >= 0 {
		_ = unix.EpollCtl(sb.epfd, unix.EPOLL_CTL_DEL, p.fd, nil)
	}
}

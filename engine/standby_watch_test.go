package engine

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The watcher's descriptor-reuse rule, inside the package: an event the watcher collected for a
// socket that has since left the table must not close the socket that now has its descriptor.
// The sockets are real (a Unix socket pair); the stale event is delivered by hand, since the
// moment between epoll_wait and the watcher's lock cannot be arranged from outside.

// watchedStandby is a started standby table for operator "op" and its StandbyGone counter.
func watchedStandby(t *testing.T) (*standby, *atomic.Int64) {
	t.Helper()
	gone := new(atomic.Int64)
	sb := newStandby(Config{MaxStandby: 4, MaxStandbyOperators: 4, StandbyTTL: time.Minute, StandbyTokenTTL: time.Minute}, gone)
	if err := sb.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.stop)
	return sb, gone
}

// socketPair returns a connected pair of stream sockets; the test closes them itself.
func socketPair(t *testing.T) (parkedEnd, peer int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

// isOpen reports whether fd is an open descriptor.
func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// lastIDNow is the id the table gave the socket it parked last.
func (sb *standby) lastIDNow() uint64 {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.lastID
}

func TestStandbyStaleEventSparesAReusedDescriptor(t *testing.T) {
	sb, gone := watchedStandby(t)
	a, aPeer := socketPair(t)
	defer unix.Close(aPeer)
	if !sb.park(filed{operator: "op"}, a, time.Now(), false) {
		t.Fatal("park refused")
	}
	staleID := sb.lastIDNow()
	fd, _, _, ok := sb.take("op", time.Now())
	if !ok || fd != a {
		t.Fatalf("take = %d, %v, want %d, true", fd, ok, a)
	}
	// A stale event for the taken socket: the socket is someone else's now and stays open.
	sb.gone(staleID)
	if !isOpen(a) {
		t.Fatal("a stale event closed a socket that was taken")
	}

	// The descriptor number now names another socket (dup3 swaps it atomically, so no other
	// goroutine of the test binary can take the number in between), parked in its turn.
	b, bPeer := socketPair(t)
	defer unix.Close(bPeer)
	if err := unix.Dup3(b, a, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(b)
	if !sb.park(filed{operator: "op"}, a, time.Now(), false) {
		t.Fatal("park of the reused descriptor refused")
	}
	sb.gone(staleID)
	if p, _ := sb.counts(); p != 1 || !isOpen(a) {
		t.Fatalf("after a stale event for the descriptor's earlier socket: parked %d, open %v, want 1, true", p, isOpen(a))
	}
	if gone.Load() != 0 {
		t.Errorf("StandbyGone = %d after stale events, want 0", gone.Load())
	}

	// The new socket's own end is seen: its peer closes, the watcher closes it.
	unix.Close(bPeer)
	deadline := time.Now().Add(10 * time.Second)
	for p, _ := sb.counts(); p != 0 && time.Now().Before(deadline); p, _ = sb.counts() {
		time.Sleep(5 * time.Millisecond)
	}
	if p, _ := sb.counts(); p != 0 || gone.Load() != 1 {
		t.Errorf("after the parked socket's peer closed: parked %d, StandbyGone %d, want 0 and 1", p, gone.Load())
	}
}

// Before start and after stop nothing can be parked: no socket is ever held unwatched.
func TestStandbyParkNeedsTheWatcher(t *testing.T) {
	gone := new(atomic.Int64)
	sb := newStandby(Config{MaxStandby: 4, MaxStandbyOperators: 4, StandbyTTL: time.Minute}, gone)
	a, aPeer := socketPair(t)
	defer unix.Close(aPeer)
	defer unix.Close(a)
	if sb.park(filed{operator: "op"}, a, time.Now(), false) {
		t.Error("park before start accepted a socket")
	}
	if err := sb.start(); err != nil {
		t.Fatal(err)
	}
	sb.stop()
	if sb.park(filed{operator: "op"}, a, time.Now(), false) {
		t.Error("park after stop accepted a socket")
	}
	sb.stop() // a second stop does nothing
}

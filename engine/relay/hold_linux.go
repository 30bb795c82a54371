package relay

import (
	"math"

	"golang.org/x/sys/unix"
)

// Held sockets. A Keeper that parks a framed socket until a later pair (the public proxy's
// standby table) would otherwise take it out of the loop's epoll set when Keep returns, watch it
// elsewhere while it waits, and have the next pair's loop register it again: four epoll_ctl calls
// per client. Hold instead leaves it in the set of the loop that hands it back, its registration
// pointed at a token of its own, and AddFramedHeld points it at its next pair on that loop: one
// EPOLL_CTL_MOD each way.
//
// A held socket is the Keeper's, not the loop's: the loop has no record of it, only a
// registration whose data is the held token, and it reports that token's events (a byte, the
// peer's end of stream, a reset, an error; edge-triggered, so each once) to the function set
// with OnHeld. The Keeper closes it whenever it likes; closing its only descriptor ends the
// registration, and an event the loop collected before the close reaches OnHeld with an id the
// Keeper no longer holds.

// maxHeldID bounds the ids Hold takes: a held token keeps 30 of the epoll data's 64 bits for the
// marker that tells it from a slot.
const maxHeldID = 1<<62 - 1

// heldToken is the epoll data of a socket held under id: the Fd half is negative and below
// wakeSlot (slots are >= 0, the eventfd is wakeSlot), with 30 bits of the id; the Pad half has the rest.
func heldToken(id uint64) (int32, int32) {
	return math.MinInt32 | int32(id&(1<<30-1)), int32(uint32(id >> 30))
}

// isHeld reports whether an event is a held socket's.
func isHeld(ev *unix.EpollEvent) bool { return ev.Fd < wakeSlot }

// heldID is the id of a held socket's event.
func heldID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)&(1<<30-1)) | uint64(uint32(ev.Pad))<<30
}

// OnHeld sets the function the loops call with a held socket's id when it reports an event
// (see Hold). It runs on the loop, so it must not block, and it must not call Close or Drain. Set
// it before the first Hold; Hold refuses while none is set.
func (r *Relay) OnHeld(f func(id uint64)) {
	r.onHeld.Store(&f)
}

// Hold leaves fd, the framed socket a Keeper is being given, in the epoll set of the loop that
// gives it; call it from inside Keep(fd). The socket is registered for itself alone: its next
// byte, end of stream, reset or error goes to the OnHeld function under id (below 1<<62, and
// never given twice while a socket holds it). The socket stays the Keeper's: it may close it
// (which ends the registration: the socket must have no other descriptor), or pair it again with
// AddFramedHeld and the loop returned here. False, with nothing changed, when fd is not being
// handed back to a Keeper, no OnHeld function is set, the relay is closing, or the kernel
// refuses; the relay then drops the registration when Keep returns, as without Hold.
func (r *Relay) Hold(fd int, id uint64) (loop int, ok bool) {
	if id > maxHeldID || fd < 0 || fd > math.MaxInt32 || r.onHeld.Load() == nil {
		return -1, false
	}
	for _, l := range r.loops {
		if l.kept.Load() != int32(fd) {
			continue
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		// kept is only set by the loop itself, around Keep: if it names fd now, this call is
		// inside that Keep, on that loop, and it stays so until the call returns.
		if l.closed || l.kept.Load() != int32(fd) || l.keptBack {
			return -1, false
		}
		s, t := heldToken(id)
		ev := unix.EpollEvent{Events: readEvents, Fd: s, Pad: t}
		if epollCtl(l.epfd, unix.EPOLL_CTL_MOD, int32(fd), &ev) != nil {
			return -1, false
		}
		l.keptHeld = true
		return l.idx, true
	}
	return -1, false
}

// AddFramedHeld is AddFramed for a b that Hold left in loop's set: the pair goes to that loop,
// whose registration of b is pointed at the pair instead of added. A loop out of range, or a b
// no longer held there, costs an EPOLL_CTL_ADD as with AddFramed, nothing worse.
func (r *Relay) AddFramedHeld(loop int, a, b int, toA, toB []byte, tag any, k Keeper) error {
	if loop < 0 || loop >= len(r.loops) {
		loop = -1
	}
	return r.addFramed(a, b, toA, toB, tag, k, loop)
}

// heldEvent hands a held socket's event to the OnHeld function.
func (l *loop) heldEvent(ev *unix.EpollEvent) {
	if f := l.r.onHeld.Load(); f != nil {
		(*f)(heldID(ev))
	}
}

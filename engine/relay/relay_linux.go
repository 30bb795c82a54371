package relay

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Relay moves bytes between pairs of stream sockets until both directions of each
// pair are finished. Create it with New; all methods are safe for concurrent use
// unless stated otherwise.
type Relay struct {
	cfg   settings
	loops []*loop
	next  atomic.Uint32 // round-robin loop choice

	pairs    atomic.Int64 // added (queued included) and not yet reported to OnDone, awaited sockets included
	awaited  atomic.Int64 // sockets given to Await and not paired or closed yet
	closed   atomic.Bool
	draining atomic.Bool

	// idle and fin are Config.IdleTimeout and FinTimeout in nanoseconds (SetTimeouts).
	idle, fin atomic.Int64
	// maxPairs is Config.MaxPairs with its default applied (SetMaxPairs).
	maxPairs atomic.Int64

	// onHeld is OnHeld's function: the loops call it for a held socket's events (hold_linux.go).
	onHeld atomic.Pointer[func(id uint64)]

	closeOnce sync.Once
	drainOnce sync.Once
	drained   chan struct{} // closed when draining and pairs reaches 0
	wg        sync.WaitGroup
}

// pending is an Add on its way to a loop.
type pending struct {
	fd   [2]int32
	pre  *[2][]byte
	sent [2]int32 // prefix bytes Add sent itself, per direction
	err  error    // what failed when Add sent them: the loop ends the pair with it
	tag  any
	// await is set for a socket from Await: fd[0] is the socket, fd[1] is -1.
	await *awaiting
	// frm and keep: the framed side plus one (AddFramed: b), and who takes it back; preHdr the
	// bytes of the frame header in front of toB not sent yet.
	frm    uint8
	preHdr uint8
	keep   Keeper
	// held: b is in the chosen loop's epoll set already, under a held token (AddFramedHeld).
	held bool
	// ref is the slot enqueue chose for the entry, and its sockets' registrations point at it;
	// unregistered: one of them could not be registered, which start does.
	ref          slotRef
	unregistered bool
}

// wantsRoom reports whether pd's sockets wait to write as they are registered: a prefix Add could
// not send whole, or an awaited socket's greeting.
func (pd *pending) wantsRoom() bool {
	return pd.pre != nil || pd.await != nil && len(pd.await.greeting) > 0
}

// New starts a relay with cfg.Loops epoll loops. It returns an error for an
// out-of-range Config or when the kernel refuses an epoll or eventfd descriptor.
func New(cfg Config) (*Relay, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: s, drained: make(chan struct{})}
	r.idle.Store(int64(s.idleTimeout))
	r.fin.Store(int64(s.finTimeout))
	r.maxPairs.Store(int64(s.maxPairs))
	for i := range s.loops {
		l, err := newLoop(r, i)
		if err != nil {
			for _, l := range r.loops {
				l.closeFDs()
			}
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	r.wg.Add(len(r.loops))
	for _, l := range r.loops {
		go l.run()
	}
	return r, nil
}

// SetTimeouts changes IdleTimeout and FinTimeout (0: off) while the relay runs: every pair,
// already relayed or not, is then closed by the new rule, and a loop that was not sweeping starts
// at its next wake-up, which this asks for.
func (r *Relay) SetTimeouts(idle, fin time.Duration) error {
	if idle < 0 || fin < 0 {
		return fmt.Errorf("relay: negative timeout (idle %v, fin %v)", idle, fin)
	}
	r.idle.Store(int64(idle))
	r.fin.Store(int64(fin))
	for _, l := range r.loops {
		l.wake()
	}
	return nil
}

// Timeouts returns the IdleTimeout and FinTimeout in force (0: off).
func (r *Relay) Timeouts() (idle, fin time.Duration) {
	return time.Duration(r.idle.Load()), time.Duration(r.fin.Load())
}

// SetMaxPairs changes MaxPairs (0: DefaultMaxPairs) while the relay runs. A lower cap closes
// nothing: the pairs and awaited sockets already held go on, and Add and Await return ErrFull
// until they number fewer than the new cap.
func (r *Relay) SetMaxPairs(n int) error {
	if n < 0 || n > MaxMaxPairs {
		return fmt.Errorf("relay: MaxPairs %d out of range [0, %d]", n, MaxMaxPairs)
	}
	if n == 0 {
		n = DefaultMaxPairs
	}
	r.maxPairs.Store(int64(n))
	return nil
}

// MaxPairs returns the cap in force on pairs and awaited sockets together.
func (r *Relay) MaxPairs() int { return int(r.maxPairs.Load()) }

// sweeps reports whether loops look for idle pairs at all.
func (r *Relay) sweeps() bool { return r.idle.Load() > 0 || r.fin.Load() > 0 }

func (r *Relay) sweepInterval() time.Duration {
	return sweepInterval(time.Duration(r.idle.Load()), time.Duration(r.fin.Load()))
}

// Add hands the connected stream sockets a and b to the relay, which owns them
// from now on: on error too, Add closes them. toB, if not empty, is delivered to b
// before any byte read from a (the public proxy replays the buffered ClientHello to
// the private side this way); toA likewise to a before any byte from b. Add copies
// both slices, so the caller may reuse them; each may be at most MaxPrefix bytes.
// tag is returned in the pair's Stats.
//
// Add checks the descriptors (stream sockets, made non-blocking if they are not)
// and queues the pair to a loop; it never waits for the loop. It returns ErrClosed
// after Close or during Drain, ErrFull at Config.MaxPairs, ErrBadFD or
// ErrPrefixTooLarge for bad arguments. Safe from any goroutine, OnDone included.
func (r *Relay) Add(a, b int, toA, toB []byte, tag any) error {
	return r.addPair(a, b, toA, toB, tag, false, nil, -1)
}

// AddFramed is Add with b a framed socket (frame.go): toB and every byte from a go to b in data
// frames, b's frames are unwrapped on their way to a, and each direction's end is an end frame
// on b's side (a's side sees a FIN as with Add). Once an end frame went each way, the pair ends
// (ReasonDone) with a closed and b handed to k (Keeper.Keep) instead of closed: k may pair it
// again. A FIN from b ends its direction too, but b is then closed, like a pair that ends any
// other way, and k gets Keep(-1). A nil k closes b at the end in every case. Once AddFramed
// returns nil, k hears of the pair exactly once; on error, never.
func (r *Relay) AddFramed(a, b int, toA, toB []byte, tag any, k Keeper) error {
	return r.addFramed(a, b, toA, toB, tag, k, -1)
}

// addFramed is AddFramed, on loop held (b held there) unless held is -1.
func (r *Relay) addFramed(a, b int, toA, toB []byte, tag any, k Keeper, held int) error {
	if len(toB) > MaxPrefix {
		return r.addPair(a, b, toA, toB, tag, false, nil, held) // refused, with the usual error
	}
	if len(toB) == 0 {
		return r.addPair(a, b, toA, nil, tag, true, k, held)
	}
	// add copies what the socket does not take at once, so the framed copy is only needed
	// during the call.
	buf := framePool.Get().(*[]byte)
	*buf = AppendFrame((*buf)[:0], toB)
	err := r.addPair(a, b, toA, *buf, tag, true, k, held)
	framePool.Put(buf)
	return err
}

// framePool holds AddFramed's buffers for the framed prefix.
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// addPair is Add, with b framed and kept by k (which may be nil) if framed, and held in loop
// held unless it is -1.
func (r *Relay) addPair(a, b int, toA, toB []byte, tag any, framed bool, k Keeper, held int) error {
	err := r.add(a, b, toA, toB, tag, framed, k, held)
	if err != nil {
		closeFD(a)
		if b != a {
			closeFD(b)
		}
	}
	return err
}

func closeFD(fd int) {
	if fd >= 0 {
		closeRaw(int32(fd))
	}
}

func (r *Relay) add(a, b int, toA, toB []byte, tag any, framed bool, k Keeper, held int) error {
	if r.closed.Load() || r.draining.Load() {
		return ErrClosed
	}
	if a == b {
		return fmt.Errorf("%w: a and b are both %d", ErrBadFD, a)
	}
	if a > 1<<31-1 || b > 1<<31-1 {
		return fmt.Errorf("%w: descriptor out of range", ErrBadFD)
	}
	limitB := MaxPrefix
	if framed {
		limitB += FrameHeader // framed by AddFramed
	}
	if len(toA) > MaxPrefix || len(toB) > limitB {
		return fmt.Errorf("%w: %d and %d bytes, limit %d", ErrPrefixTooLarge, len(toA), len(toB), MaxPrefix)
	}
	if err := r.checkFD(a); err != nil {
		return err
	}
	if err := r.checkFD(b); err != nil {
		return err
	}
	if !r.reserve() {
		return ErrFull
	}
	// Send the prefixes from here: a hello the peer waits for should not wait
	// for the loop to wake up as well. What the socket does not take is left to
	// the loop. An error is kept for the loop to report, since the call that
	// returns a socket's pending error clears it: a connect refused before Add
	// would otherwise reach the loop as a mere broken pipe.
	pd := pending{fd: [2]int32{int32(a), int32(b)}, tag: tag}
	if framed {
		pd.frm, pd.keep = 2, k
		if len(toB) > 0 {
			pd.preHdr = FrameHeader
		}
	}
	dst, prefix := [2]int{b, a}, [2][]byte{toB, toA}
	for d := range 2 {
		n, err := send(int32(dst[d]), prefix[d])
		switch {
		case err == nil:
			prefix[d] = prefix[d][n:]
			pd.sent[d] = int32(n)
			if d == 0 && framed {
				// The frame header AddFramed put in front of toB is not the caller's bytes.
				h := min(n, int(pd.preHdr))
				pd.sent[d] -= int32(h)
				pd.preHdr -= uint8(h)
			}
		case err != unix.EAGAIN && err != unix.EINTR && pd.err == nil:
			pd.err = &PairError{Op: "write", Side: sideName[1-d], Err: err}
		}
	}
	toB, toA = prefix[0], prefix[1]
	if len(toA)+len(toB) > 0 {
		// One allocation for both: the rest of a prefix the socket did not take at
		// once stays here until EPOLLOUT.
		buf := make([]byte, len(toB)+len(toA))
		pd.pre = new([2][]byte)
		if len(toB) > 0 {
			pd.pre[0] = buf[:len(toB):len(toB)]
			copy(pd.pre[0], toB)
		}
		if len(toA) > 0 {
			pd.pre[1] = buf[len(toB):]
			copy(pd.pre[1], toA)
		}
	}
	var l *loop
	if held >= 0 {
		l, pd.held = r.loops[held], true
	} else {
		l = r.loopFor(pd.fd[1])
	}
	if !l.enqueue(pd) {
		r.release()
		return ErrClosed
	}
	return nil
}

// loopFor picks the loop for a new entry whose framed or awaited socket is fd: the one handing
// fd to its Keeper right now, which still holds it in its epoll set (see loop.handBack), or else
// the next loop in turn.
func (r *Relay) loopFor(fd int32) *loop {
	for _, l := range r.loops {
		if l.kept.Load() == fd {
			return l
		}
	}
	return r.loops[(r.next.Add(1)-1)%uint32(len(r.loops))]
}

// reserve counts a new pair against MaxPairs.
func (r *Relay) reserve() bool {
	for {
		n := r.pairs.Load()
		if n >= r.maxPairs.Load() {
			return false
		}
		if r.pairs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release uncounts a pair and wakes Drain when it was the last one.
func (r *Relay) release() {
	if r.pairs.Add(-1) == 0 && r.draining.Load() {
		r.signalDrained()
	}
}

func (r *Relay) signalDrained() {
	r.drainOnce.Do(func() { close(r.drained) })
}

// finished reports a pair that a loop has closed. Runs on that loop.
func (r *Relay) finished(s Stats) {
	if r.cfg.onDone != nil {
		r.cfg.onDone(s)
	}
	r.release()
}

// AddConns is Add for two *net.TCPConn: it duplicates each descriptor
// (F_DUPFD_CLOEXEC; the duplicate shares the non-blocking mode Go set), closes the
// net.Conn, and adds the duplicates. Closing a net.Conn only drops Go's
// descriptor, so the connection lives on in the duplicate, untouched by Go's
// netpoller. The conns are closed in every case, errors included; a nil conn is
// ErrBadFD. Safe from any goroutine; the caller must not use the conns afterwards.
func (r *Relay) AddConns(a, b *net.TCPConn, toA, toB []byte, tag any) error {
	fa, errA := dupConn(a)
	fb, errB := dupConn(b)
	if errA != nil || errB != nil {
		closeFD(fa)
		closeFD(fb)
		if errA != nil {
			return errA
		}
		return errB
	}
	return r.Add(fa, fb, toA, toB, tag)
}

// AddConnFD is Add for a *net.TCPConn (handled as in AddConns) and a descriptor b
// the caller owns, such as a socket whose non-blocking connect is under way: the
// loop delivers toB once it completes and reports a failed connect as the pair's
// error. Both are closed on error. Safe from any goroutine.
func (r *Relay) AddConnFD(a *net.TCPConn, b int, toA, toB []byte, tag any) error {
	fa, err := dupConn(a)
	if err != nil {
		closeFD(b)
		return err
	}
	return r.Add(fa, b, toA, toB, tag)
}

func dupConn(c *net.TCPConn) (int, error) {
	if c == nil {
		return -1, fmt.Errorf("%w: nil conn", ErrBadFD)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("%w: %v", ErrBadFD, err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, fmt.Errorf("%w: %v", ErrBadFD, err)
	}
	if dupErr != nil {
		return -1, fmt.Errorf("relay: dup: %w", dupErr)
	}
	return fd, nil
}

// Loops returns the number of epoll loops (goroutines) the relay runs.
func (r *Relay) Loops() int { return len(r.loops) }

// Pairs returns the number of pairs added and not yet finished; a pair stops
// counting after its OnDone has returned. Awaited sockets are not pairs until
// their Awaiter pairs them (see Awaiting). Safe from any goroutine.
func (r *Relay) Pairs() int {
	return int(r.pairs.Load() - r.awaited.Load())
}

// PipesInUse returns the pipes holding bytes for a direction, summed over the
// loops as of each loop's last pass (a direction holds one only while its
// destination is full). Safe from any goroutine.
func (r *Relay) PipesInUse() int {
	n := int64(0)
	for _, l := range r.loops {
		n += l.pipesInUse.Load()
	}
	return int(n)
}

// PipesOpen returns the open pipes, pooled plus in use, summed over the loops as
// of each loop's last pass; at most Loops*MaxPipes. Safe from any goroutine.
func (r *Relay) PipesOpen() int {
	n := int64(0)
	for _, l := range r.loops {
		n += l.pipesOpen.Load()
	}
	return int(n)
}

// Close stops taking pairs, closes every pair (ReasonShutdown, an abortive
// close), closes the pools and the loops' descriptors, and waits until every loop
// has returned, so all OnDone calls have run when it returns. Calling it again
// waits likewise. It always returns nil; the error result is io.Closer's. Safe
// from any goroutine except OnDone, where it would wait for itself.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		for _, l := range r.loops {
			l.stop()
		}
	})
	r.wg.Wait()
	return nil
}

// Drain stops taking pairs (Add and Await return ErrClosed), closes the awaited
// sockets, waits until every pair has finished on its own or ctx is done, then
// calls Close. It returns ctx.Err() if ctx ended first (the remaining pairs are
// then closed with ReasonShutdown), else nil. Safe from any goroutine except
// OnDone.
func (r *Relay) Drain(ctx context.Context) error {
	r.draining.Store(true)
	for _, l := range r.loops {
		l.dropAwaited()
	}
	if r.pairs.Load() == 0 {
		r.signalDrained()
	}
	var err error
	select {
	case <-r.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	_ = r.Close()
	return err
}

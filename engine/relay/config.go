package relay

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"
)

// Defaults and limits for Config. The caps exist so that no input, however many
// pairs or however slow their readers, makes the relay grow without bound.
const (
	// DefaultPipeSize is the largest pipe fs.pipe-max-size allows by default. A
	// bulk stream moves in as few splices as the socket's queue allows: against
	// the kernel's 64 KiB, eight raw streams through both proxies moved 1.2-1.7x
	// the bytes, and one stream about as many for three quarters of the proxies'
	// CPU per GiB (BENCHMARKS.md). A pipe holds bytes only while its destination
	// is full, so the price is up to this much kernel memory per stalled
	// direction, DefaultMaxPipes of them per loop at most.
	DefaultPipeSize = 1 << 20
	// MinPipeSize and MaxPipeSize bound Config.PipeSize. The upper bound is the
	// default of /proc/sys/fs/pipe-max-size.
	MinPipeSize = 4 << 10
	MaxPipeSize = 1 << 20

	// DefaultMaxPipes is the per-loop cap on open pipes (pooled plus in use).
	// Pipes are held only while a destination is full, so this many stalled
	// directions per loop are served zero-copy; more fall back to the bounded copy.
	// With DefaultPipeSize it bounds a loop's stalled pipes at 32 MiB.
	DefaultMaxPipes = 32

	// DefaultMaxPairs caps the pairs of one Relay. At two descriptors per pair it
	// is well above what one process can usually open, so in practice the fd
	// limit binds first.
	DefaultMaxPairs = 1 << 16

	// MaxLoops bounds Config.Loops.
	MaxLoops = 256
	// MaxMaxPairs bounds Config.MaxPairs (slots are addressed with 31 bits in the
	// epoll data; this leaves a wide margin).
	MaxMaxPairs = 1 << 24

	// MaxPrefix caps each of the toA/toB byte slices given to Add. The public proxy
	// replays at most one ClientHello (~17 KiB); anything far bigger is a bug.
	MaxPrefix = 64 << 10
)

// Errors returned by New, Add and AddConns.
var (
	// ErrClosed: the relay is closed or draining and takes no new pairs.
	ErrClosed = errors.New("relay: closed")
	// ErrFull: the relay already holds Config.MaxPairs pairs.
	ErrFull = errors.New("relay: too many pairs")
	// ErrBadFD: a descriptor is negative, both are the same, or it is not a
	// stream socket.
	ErrBadFD = errors.New("relay: bad file descriptor")
	// ErrPrefixTooLarge: toA or toB is longer than MaxPrefix.
	ErrPrefixTooLarge = errors.New("relay: prefix too large")
)

// Config tunes a Relay. The zero value is usable: every zero field takes its
// documented default.
type Config struct {
	// Loops is the number of epoll loops (goroutines). 0 means half of
	// runtime.GOMAXPROCS(0), at least one; at most MaxLoops. A loop's work is
	// mostly the kernel's (splice and the TCP stack under it, in raw system
	// calls), so one loop, gathering the events of all its pairs in one wake-up,
	// keeps a CPU and the softirq work its sends cause busy; BENCHMARKS.md has
	// the measurements.
	Loops int

	// PipeSize is the capacity requested for each pipe with F_SETPIPE_SZ.
	// 0 means DefaultPipeSize; otherwise it must lie in [MinPipeSize, MaxPipeSize].
	// A failing F_SETPIPE_SZ (for example an unprivileged user over
	// fs.pipe-user-pages-soft, 64 MiB of pipes by default for all of a user's
	// processes) is tolerated: the pipe keeps the size the kernel gave it and
	// moves smaller chunks.
	PipeSize int

	// MaxPipes caps open pipes (pooled plus in use) per loop. 0 means
	// DefaultMaxPipes; a negative value disables splicing, so every direction uses
	// the bounded copy (peek, write, consume) through one buffer per loop
	// (PipeSize, at most 64 KiB). When the cap is hit, a direction that needs a
	// pipe uses that same bounded copy for its chunk instead of waiting, so no
	// pair waits for another pair's pipe.
	MaxPipes int

	// IdleTimeout closes a pair through which no byte has moved, in either
	// direction, for this long. 0 means never. The check runs every
	// IdleTimeout/8 (at least every 10 ms, at most every second), so a pair is
	// closed between IdleTimeout and IdleTimeout plus that interval.
	IdleTimeout time.Duration
	// FinTimeout is the idle timeout of a half-closed pair: once either side has finished
	// sending, the pair is closed after FinTimeout without traffic (0 = IdleTimeout applies).
	// It stops a peer that never closes from holding a pair whose other side has gone.
	FinTimeout time.Duration

	// MaxPairs caps the pairs held at once, queued Adds included; Add returns
	// ErrFull beyond it. 0 means DefaultMaxPairs.
	MaxPairs int

	// TrustedFDs says the caller gives Add, Await and Pairing.Peer only non-blocking stream
	// sockets (from accept4 or socket with SOCK_NONBLOCK, relay.Connect, or a duplicate of a
	// net.TCPConn's descriptor), so they are not checked: two system calls fewer per
	// descriptor. A blocking descriptor given anyway would stall its loop.
	TrustedFDs bool

	// OnDone, if not nil, is called once per pair after both of its descriptors
	// are closed. It runs on the loop goroutine that served the pair: it must not
	// block, and it must not call Close or Drain (they wait for the loops, which
	// would deadlock). Add and the counters are safe to call from it.
	OnDone func(Stats)
}

// Stats reports one finished pair to Config.OnDone.
type Stats struct {
	// AToB and BToA count the bytes delivered to b and to a: the toB (toA)
	// prefix plus every byte spliced or copied from a (b). Bytes that were read
	// but could not be delivered because the pair ended are not counted.
	AToB, BToA int64
	// Reason says why the pair ended.
	Reason Reason
	// Err is non-nil exactly when Reason is ReasonFailed: a *PairError naming
	// the call that failed, which unwraps to its cause, so that for example
	// errors.Is(Err, unix.ECONNREFUSED) tells a refused connect.
	Err error
	// Tag is the value given to Add.
	Tag any
	// Loop is the index, in [0, Loops), of the loop that served the pair and runs
	// OnDone for it: what a caller keeps per loop from OnDone adds up with that
	// loop's live pairs in Visit.
	Loop int
	// Kept says the pair's framed socket ended cleanly (an end frame each way) and went back
	// to its Keeper instead of being closed.
	Kept bool
}

// A Keeper takes back a pair's framed socket (see AddFramed and AwaitFramed) once both
// directions ended with an end frame: the socket is connected, clean, and the Keeper's from the
// call on (the relay drops its epoll registration when Keep returns, unless Keep gave the
// socket back to the relay or held it there: Hold). A pair that ends any other way closes the
// socket and calls Keep(-1), so a Keeper hears of every pair it was given once. Keep runs on the
// loop right after OnDone, so it must not block; it may call Add, AddFramed, Await, AwaitFramed
// and Hold.
type Keeper interface {
	Keep(fd int)
}

// Reason is why a pair ended (Stats.Reason).
type Reason uint8

// The reasons a pair ends. The zero Reason is none of them.
const (
	// ReasonDone: both directions reached end of stream and were delivered.
	ReasonDone Reason = iota + 1
	// ReasonIdle: no byte moved for Config.IdleTimeout.
	ReasonIdle
	// ReasonFinIdle: one side had finished sending and no byte moved for
	// Config.FinTimeout.
	ReasonFinIdle
	// ReasonShutdown: Close, or Drain whose context ended before the pair did.
	ReasonShutdown
	// ReasonFailed: an operation on one of the pair's sockets failed, or the
	// loop serving the pair did; Stats.Err says which.
	ReasonFailed
)

var reasonText = [...]string{
	ReasonDone:     "done",
	ReasonIdle:     "idle",
	ReasonFinIdle:  "half-closed idle",
	ReasonShutdown: "shutdown",
	ReasonFailed:   "error",
}

// String returns the reason as logs show it: "done", "idle", "half-closed idle",
// "shutdown" or "error".
func (r Reason) String() string {
	if int(r) < len(reasonText) && reasonText[r] != "" {
		return reasonText[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// PairError is the failure that ended a pair, as reported in Stats.Err.
type PairError struct {
	// Op is what failed: "splice from", "splice to", "read", "write" or
	// "shutdown" while moving bytes, "socket" for an error the socket reported
	// by itself (a refused or timed-out connect among them), "epoll_ctl" when
	// the socket could not be registered, "peer" when an Awaiter's First
	// returned an unusable socket; or "poll" or "epoll_wait" when the loop
	// itself failed, which ends every pair it served.
	Op string
	// Side is the socket: "a" or "b" in the order given to Add (for an awaited
	// socket, a is that socket and b the one its Awaiter chose), or "" when
	// the loop failed.
	Side string
	// Err is the cause, usually a syscall.Errno.
	Err error
}

// Error returns "<op> <side>: <cause>", or "<op>: <cause>" without a side.
func (e *PairError) Error() string {
	if e.Side == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Side + ": " + e.Err.Error()
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *PairError) Unwrap() error { return e.Err }

// settings is a Config with defaults applied and checked.
type settings struct {
	loops       int
	pipeSize    int
	maxPipes    int // < 0: no pipes
	idleTimeout time.Duration
	finTimeout  time.Duration
	maxPairs    int
	trusted     bool
	onDone      func(Stats)
}

func (c Config) settings() (settings, error) {
	s := settings{
		loops:       c.Loops,
		pipeSize:    c.PipeSize,
		maxPipes:    c.MaxPipes,
		idleTimeout: c.IdleTimeout,
		finTimeout:  c.FinTimeout,
		maxPairs:    c.MaxPairs,
		trusted:     c.TrustedFDs,
		onDone:      c.OnDone,
	}
	switch {
	case s.loops < 0 || s.loops > MaxLoops:
		return s, fmt.Errorf("relay: Loops %d out of range [0, %d]", s.loops, MaxLoops)
	case s.loops == 0:
		s.loops = max(1, runtime.GOMAXPROCS(0)/2)
	}
	switch {
	case s.pipeSize == 0:
		s.pipeSize = DefaultPipeSize
	case s.pipeSize < MinPipeSize || s.pipeSize > MaxPipeSize:
		return s, fmt.Errorf("relay: PipeSize %d out of range [%d, %d]", s.pipeSize, MinPipeSize, MaxPipeSize)
	}
	if s.maxPipes == 0 {
		s.maxPipes = DefaultMaxPipes
	}
	if s.idleTimeout < 0 {
		return s, fmt.Errorf("relay: negative IdleTimeout %v", s.idleTimeout)
	}
	if s.finTimeout < 0 {
		return s, fmt.Errorf("relay: negative FinTimeout %v", s.finTimeout)
	}
	switch {
	case s.maxPairs < 0 || s.maxPairs > MaxMaxPairs:
		return s, fmt.Errorf("relay: MaxPairs %d out of range [0, %d]", s.maxPairs, MaxMaxPairs)
	case s.maxPairs == 0:
		s.maxPairs = DefaultMaxPairs
	}
	return s, nil
}

// sweepInterval is how often a loop looks for idle pairs: an eighth of the shorter timeout.
func sweepInterval(idle, fin time.Duration) time.Duration {
	t := idle
	if fin > 0 && (t == 0 || fin < t) {
		t = fin
	}
	return min(max(t/8, 10*time.Millisecond), time.Second)
}

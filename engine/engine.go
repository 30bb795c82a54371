package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"epsproxy/engine/hello"
	"epsproxy/engine/relay"
	"epsproxy/matcher"
	"epsproxy/proxy/wire"
)

// Routes finds the operator that announced a host name (*matcher.Table).
type Routes interface {
	Lookup(host []byte, now time.Time) (matcher.Announcement, bool)
}

// Notice tells the private side's operator that a client for Domain waits under Token.
// Addresses are the client's, as the engine accepted it, and its public listener's.
type Notice struct {
	Domain    string
	Operator  string
	Token     wire.Token
	Addresses wire.Addresses
}

// Notifier hands a Notice to the signaling side. It is called on an event loop and must only
// enqueue (epsclient.Pool.Submit); an error closes the client at once. If the notice cannot be
// delivered later, the signaling side calls Engine.Cancel.
type Notifier func(Notice) error

// Engine is the public proxy's reactor. Create it with New, run it with Run.
type Engine struct {
	cfg     Config
	routes  Routes
	notify  Notifier
	relay   *relay.Relay
	log     *slog.Logger
	pending *pending
	standby *standby
	live    live // limits a reload changes (reconfigure.go)
	// helloCap and tokenCap count the hello and token phases per source (and the token phase
	// in all); the hello phase's total is helloConns.
	helloCap *phaseCap
	tokenCap *phaseCap
	refusals *refusalLog
	obs      Observer               // nil: nobody observes
	onAccept atomic.Pointer[func()] // OnAccept's, called on every accepted connection

	internalPort int
	fdLimit      int64
	fdBase       int64 // descriptors open before the engine accepted anything

	mu       sync.Mutex
	loops    sync.Map // gnet.EventLoop -> *loop; written once per loop, read on every OnOpen
	eng      gnet.Engine
	booted   bool // OnBoot ran
	stopping bool // Stop was called
	ready    chan struct{}
	done     chan struct{}

	helloConns atomic.Int64
	tokenConns atomic.Int64 // internal connections in the token phase
	gnetConns  atomic.Int64
	stats      Stats
}

// loop is one event loop's private state.
type loop struct {
	el      gnet.EventLoop
	parser  hello.Parser
	hello   deadlines
	waiting deadlines
	token   deadlines
}

// New checks cfg and builds an engine; nothing listens before Run.
func New(cfg Config, routes Routes, notify Notifier, rl *relay.Relay, log *slog.Logger) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if routes == nil || notify == nil || rl == nil || log == nil {
		return nil, errors.New("engine: routes, notifier, relay and logger are required")
	}
	_, port, _ := net.SplitHostPort(cfg.InternalAddr)
	ip, _ := strconv.Atoi(port)
	limit, err := raiseFDLimit()
	if err != nil {
		return nil, fmt.Errorf("engine: RLIMIT_NOFILE: %w", err)
	}
	e := &Engine{
		cfg:          cfg,
		routes:       routes,
		notify:       notify,
		relay:        rl,
		log:          log,
		pending:      newPending(cfg.MaxPending),
		helloCap:     newPhaseCap(cfg.MaxHelloPerSource, 0),
		tokenCap:     newPhaseCap(cfg.MaxTokenPerSource, cfg.MaxTokenConns),
		refusals:     newRefusalLog(log, cfg.RefusalLogLines, cfg.RefusalLogInterval, time.Now()),
		obs:          cfg.Observer,
		internalPort: ip,
		fdLimit:      int64(limit),
		fdBase:       int64(countFDs()),
		ready:        make(chan struct{}),
		done:         make(chan struct{}),
	}
	e.standby = newStandby(cfg, &e.stats.StandbyGone)
	e.standby.relay = rl
	rl.OnHeld(e.standby.gone)
	e.live.set(cfg)
	return e, nil
}

// Run listens and serves until Stop; it returns the error that stopped the engine (nil after
// Stop). A listen failure returns at once.
func (e *Engine) Run() error {
	defer close(e.done)
	// gnet v2.10.0 leaves the listeners it already opened bound when a later one fails; find a
	// taken address before gnet does, so a failed Run leaves nothing open.
	for _, addr := range []string{e.cfg.PublicAddr, e.cfg.InternalAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		ln.Close()
	}
	if err := e.standby.start(); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	h := &handler{e: e}
	// ReusePort: every loop accepts and registers its own connections. Without it gnet's
	// acceptor hands sockets to the loops through a queue, and a socket handed over while Stop
	// runs is never registered or closed (its client hangs, its descriptor leaks). Linux lets
	// only the same user share the port.
	err := gnet.Rotate(h, []string{"tcp://" + e.cfg.PublicAddr, "tcp://" + e.cfg.InternalAddr},
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(e.cfg.Loops),
		gnet.WithTicker(true),
		gnet.WithReuseAddr(true),
		gnet.WithReusePort(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(gnetLogger{e.log}),
	)
	// gnet has closed its connections; the parked sockets and their watcher are the engine's own.
	e.standby.stop()
	// The interval's refusals that got no line of their own still get their summary.
	e.refusals.flush(time.Now(), true)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// deferAcceptSecs is TCP_DEFER_ACCEPT on the listeners: how long the kernel holds a connection
// that has sent nothing before it is accepted anyway (and meets the hello or token deadline).
const deferAcceptSecs = 1

// deferAccept asks the kernel to report a new connection only once its first bytes are there
// (TCP_DEFER_ACCEPT, nginx's "deferred", HAProxy's "defer-accept"). A TLS client sends its hello
// and a private proxy its token right after the handshake, so the loop accepts and reads in one
// wake-up instead of two. A client that connects and says nothing waits in the kernel's queue
// (bounded by the listen backlog) instead of in the engine, which meets it after deferAcceptSecs
// and a SYN-ACK retransmit; if the engine stops first, such a client was never accepted and
// learns it when it sends. It is an optimisation only: gnet gives access to the first loop's
// listeners alone (with ReusePort every loop has its own), so with more loops the others accept
// as before.
func (e *Engine) deferAccept(eng gnet.Engine) {
	for _, addr := range []string{e.cfg.PublicAddr, e.cfg.InternalAddr} {
		fd, err := eng.DupListener("tcp", addr)
		if err == nil {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSecs)
			_ = unix.Close(fd)
		}
		if err != nil {
			e.log.Debug("TCP_DEFER_ACCEPT not set", "listener", addr, "err", err)
		}
	}
}

// Ready is closed once both listeners accept connections.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Done is closed when Run has returned.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Stop closes the listeners and every connection gnet still holds (clients in the hello or
// waiting phase, unpaired internal connections). Relayed pairs belong to the relay and are not
// touched. Safe from any goroutine.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	e.stopping = true
	booted := e.booted
	eng := e.eng
	e.mu.Unlock()
	if !booted {
		return nil // OnBoot will see stopping and shut the engine down at once
	}
	return eng.Stop(ctx)
}

// Cancel closes the client waiting under tok, if it still waits. The signaling side calls it when
// the notice could not be delivered. Safe from any goroutine.
func (e *Engine) Cancel(tok wire.Token, why string) {
	s := e.pending.take(tok)
	if s == nil {
		return
	}
	e.stats.NotifyFailed.Add(1)
	if e.refused(s, "notify_failed") {
		e.log.Info("client refused", "reason", "notify_failed", "domain", s.domain, "announcer", s.operator, "remote", s.src.String(), "err", why)
	}
	_ = s.loop.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if s.phase == phaseWaiting {
			_ = s.loop.el.Close(s.c)
		}
		return nil
	}))
}

// Reserve makes n one-time standby tokens for operator, valid until the returned time. A private
// side that presents one on the internal port is parked for operator's next client (see
// standby.go); with clientAddress, that client is preceded on the socket by the address header
// (wire.AppendAddressHeader) carrying its addresses. Past the operator's cap the oldest
// unpresented tokens are forgotten. ErrStopping once Stop was called. Safe from any goroutine.
func (e *Engine) Reserve(operator string, n int, mode wire.SocketMode) ([]wire.Token, time.Time, error) {
	if e.isStopping() {
		return nil, time.Time{}, ErrStopping
	}
	return e.standby.reserve(operator, n, mode, time.Now())
}

// ErrStopping is returned by Reserve and AcceptTokens once Stop was called: the tokens would
// die with the engine, and a private proxy that gets them dials sockets nobody parks.
var ErrStopping = errors.New("engine: stopping")

func (e *Engine) isStopping() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopping
}

// Mint makes n one-time standby tokens (at most MaxStandby) without filing them: this instance
// hands them out on behalf of another instance of the same public proxy, which files their hashes
// (HashToken) with AcceptTokens. They are meant to be valid until the returned time
// (now+StandbyTokenTTL). ErrStandbyOff when standby connections are disabled. Safe from any
// goroutine.
func (e *Engine) Mint(n int) ([]wire.Token, time.Time, error) {
	return e.standby.mint(n, time.Now())
}

// AcceptTokens files the hashes of standby tokens another instance minted (Mint) for operator,
// valid until the given time: a private side that presents one of the tokens is parked exactly as
// with a token from Reserve with the same mode, once. The caps and eviction are Reserve's (the operator's cap counts
// its outstanding tokens and parked sockets, past it the oldest outstanding tokens are forgotten;
// MaxStandbyOperators; ErrStandbyOff). Hashes already outstanding are skipped, and those beyond
// the room the operator's parked sockets leave are not filed. An until later than
// now+StandbyTokenTTL is brought down to it; an until that is not after now is an error. Safe from
// any goroutine.
func (e *Engine) AcceptTokens(operator string, hashes []wire.TokenHash, until time.Time, mode wire.SocketMode) error {
	if e.isStopping() {
		return ErrStopping
	}
	return e.standby.accept(operator, hashes, mode, until, time.Now())
}

// Standby returns the parked standby sockets and the standby tokens (reserved or accepted) not
// presented yet.
func (e *Engine) Standby() (parked, tokens int) { return e.standby.counts() }

// OperatorStandby is one operator's share of the standby table.
type OperatorStandby struct {
	Operator       string
	Parked, Tokens int
}

// StandbyByOperator returns, for each operator holding any, its parked standby sockets and its
// standby tokens not presented yet, sorted by operator. The operators are those that reserved
// tokens through EPS (or another instance accepted them for), at most MaxStandbyOperators. Safe
// from any goroutine: it holds the standby table's lock for one pass over the operators.
func (e *Engine) StandbyByOperator() []OperatorStandby { return e.standby.byOperator() }

// Pending is the number of clients waiting for their private side.
func (e *Engine) Pending() int { return e.pending.len() }

// HelloConns is the number of clients still sending their ClientHello.
func (e *Engine) HelloConns() int { return int(e.helloConns.Load()) }

// TokenConns is the number of internal connections that have not presented their token yet.
func (e *Engine) TokenConns() int { return int(e.tokenConns.Load()) }

// Loops returns the number of event loops Run starts.
func (e *Engine) Loops() int { return e.cfg.Loops }

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// OnAccept has f called for every connection either listener accepts, on its event loop and
// before anything else is done with it (the public proxy wakes its GOMAXPROCS governor with
// it). f must return at once; nil removes it. Safe from any goroutine, before or after Run.
func (e *Engine) OnAccept(f func()) {
	if f == nil {
		e.onAccept.Store(nil)
		return
	}
	e.onAccept.Store(&f)
}

// fdsInUse estimates the process's open descriptors from what the engine and relay hold.
func (e *Engine) fdsInUse() int64 {
	return e.fdBase + e.gnetConns.Load() + e.standby.parkedN.Load() + 2*int64(e.relay.Pairs()) + 2*int64(e.relay.PipesOpen())
}

// loopOf returns the loop's state, creating it on the loop's first connection. Lookups after
// that take no lock, so loops never contend for it per connection.
func (e *Engine) loopOf(el gnet.EventLoop) *loop {
	if l, ok := e.loops.Load(el); ok {
		return l.(*loop)
	}
	l, _ := e.loops.LoadOrStore(el, &loop{el: el})
	return l.(*loop)
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 64
	}
	return len(ents)
}

// Stats are the engine's counters; read them with Load.
type Stats struct {
	Accepted      atomic.Int64 // public connections accepted
	Refused       atomic.Int64 // public connections closed before a match (any reason)
	NoRoute       atomic.Int64 // complete hellos for names nobody announced
	Matched       atomic.Int64 // clients filed under a token
	Paired        atomic.Int64 // clients handed to the relay with their private side (either way)
	StandbyPaired atomic.Int64 // of those, clients relayed to a parked standby socket at once
	Parked        atomic.Int64 // standby sockets parked
	StandbyReused atomic.Int64 // framed standby sockets parked again after serving a client
	StandbyGone   atomic.Int64 // parked sockets closed because their private side closed, reset or spoke
	Expired       atomic.Int64 // clients whose private side did not come in time
	NotifyFailed  atomic.Int64 // clients closed because the notice failed
	BadTokens     atomic.Int64 // internal connections closed: short, unknown, late or trailing bytes
	HelloTimeouts atomic.Int64 // clients closed for not finishing the hello in time
	RateLimited   atomic.Int64 // connections refused by a per-source limit (both listeners)
	Overloaded    atomic.Int64 // connections refused by a cap (hello conns, token conns, pending, fds)
	SourceBusy    atomic.Int64 // connections refused by a per-source cap (hello phase, token phase)
}

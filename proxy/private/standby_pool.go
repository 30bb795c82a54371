package private

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"epsproxy/engine/relay"
	"epsproxy/proxy/wire"
)

// Standby connections: for every public proxy it announces names to, the private proxy keeps
// Settings.Standby sockets dialed in ahead of time, each authenticated with a one-time token it
// reserved through EPS (reserveConnections, in batches: standby_tokens.go). The public proxy
// parks them and relays a client to one at once, so the client does not wait for an EPS round
// trip and neither EPS node works per connection. The stream on a standby socket is the same as
// on a dial-back, the client's hello first, behind the address header when this proxy reserved
// its token with client_address (proxyprotocol.go). The private proxy learns the name from its SNI,
// checks that it announced that name to that public proxy, dials the internal server and
// relays. A public proxy that does not offer reserveConnections (or any failure to get tokens)
// leaves this proxy on the dial-back path alone.
//
// No goroutine waits on a standby socket: each is dialed without blocking and handed to the relay
// (relay.Await), which sends the token once the connect completes and, when the client's hello
// arrives, calls standbySocket.First on its loop (standby_socket.go). First routes the hello and
// starts the internal connect, and the relay pairs the two sockets right there, so a client costs
// this process no goroutine wake-up. The pool's goroutine only wakes to dial replacements, a few
// at a time. Clients that need blocking calls take the fallback path (standby_fallback.go).
//
// Tokens are reserved framed unless standby_reuse is off (wire.SocketMode.Framed): such a socket
// carries one client after another. When its client's pair ends with an end or abort frame each
// way, the relay hands it back (standbySocket.Keep) and it waits for the next client; the pool
// counts sockets serving a client as coming back, so it dials only while fewer than Standby are
// waiting or serving, or fewer than half of Standby are waiting.

const (
	// standbyRetryOff is how long a public proxy that refuses reserveConnections is left alone.
	standbyRetryOff = 5 * time.Minute
	// standbyQuickClose: a socket closed this soon after its token, without a byte, was refused
	// (token unknown to a restarted public proxy, cap reached): drop the stock and back off.
	standbyQuickClose = time.Second
	// standbyTokenMargin: tokens this close to their expiry are not used.
	standbyTokenMargin = 10 * time.Second
	// standbyKickShare: the pool's goroutine is woken to dial replacements once this share of
	// its sockets is used (at least one), so it dials a few at a time rather than one per client;
	// fewer are replaced standbyRefillDelay after the first was used.
	standbyKickShare   = 8
	standbyRefillDelay = 20 * time.Millisecond
	// standbyBatchShare: tokens are reserved this many times Standby at a time (at most
	// wire.MaxReserve), so that one reserveConnections call, which costs each EPS node far more
	// than a client does, serves many clients.
	standbyBatchShare = 8
	// standbyFullPause: the pool looks again this long after it found the relay full.
	standbyFullPause = time.Second
)

// standbyPool keeps one public proxy supplied with standby sockets.
type standbyPool struct {
	p     *Proxy
	proxy string // the public proxy's operator name

	mu sync.Mutex
	// want, batch and kickAt follow standby (resize): sockets kept waiting, tokens reserved at a
	// time, and replacements wanted before the goroutine is woken.
	want, batch, kickAt int
	stock               []wire.Token // reserved, not used yet, oldest first
	// addressed and framed: the stock was reserved with client_address, framed, and the public
	// proxy confirmed it.
	addressed, framed bool
	// plainUntil: the public proxy refused the socket mode's fields (an earlier version); the
	// pool reserves without them until then.
	plainUntil time.Time
	gen        uint64    // bumped whenever the stock is replaced or dropped
	until      time.Time // the stock's expiry
	endpoint   string
	// target is the instance of a public proxy of several that this pool keeps supplied (its
	// internal endpoint; empty: whichever instance answers), instances the live ones its last
	// reserveConnections listed (none for a public proxy that runs alone).
	target    string
	instances []string
	// first marks a proxy's first pool, which also asks where to dial now and then (placement);
	// placed is when it last asked.
	first   bool
	placed  time.Time
	waiting int       // handed to the relay and not taken by a client or gone yet
	busy    int       // framed sockets serving a client, to come back (standbySocket.Keep)
	pause   time.Time // no dialing before this
	backoff time.Duration
	grown   time.Time // when backoff last grew
	// taken is the stock (its gen) the public proxy accepted a token of: one of its tokens
	// refused later means the public proxy forgot them (it restarted), not that it refuses us.
	taken   uint64
	stopped bool

	ctx    context.Context // ends when the pool stops: cancels a reserve call or a dial
	cancel context.CancelFunc
	kick   chan struct{}
	refill *time.Timer // kicks standbyRefillDelay after the first socket of a batch was used
	done   chan struct{}
}

func newStandbyPool(p *Proxy, proxy, target string) *standbyPool {
	ctx, cancel := context.WithCancel(context.Background())
	sp := &standbyPool{
		p: p, proxy: proxy, target: target,
		ctx:    ctx,
		cancel: cancel,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	sp.resize(p.live().Standby)
	sp.refill = time.AfterFunc(time.Hour, sp.wake)
	sp.refill.Stop()
	return sp
}

// resize sets how many sockets the pool keeps waiting (standby, positive). Raised, the pool
// dials the difference at its next wake-up; lowered, it dials no replacements until the
// sockets it holds are used or expire. Any goroutine.
func (sp *standbyPool) resize(n int) {
	sp.mu.Lock()
	sp.want = n
	sp.batch = min(max(standbyBatchShare*n, 16), wire.MaxReserve)
	sp.kickAt = max(n/standbyKickShare, 1)
	sp.mu.Unlock()
}

// wake asks the pool's goroutine to dial replacements. Any goroutine.
func (sp *standbyPool) wake() {
	select {
	case sp.kick <- struct{}{}:
	default:
	}
}

// run dials sockets until want are waiting, then sleeps until one is used or closed.
func (sp *standbyPool) run() {
	defer close(sp.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if sp.placementDue() {
			sp.place()
		}
		sp.fill()
		select {
		case <-sp.ctx.Done():
			return
		case <-sp.kick:
		case <-tick.C:
		}
	}
}

func (sp *standbyPool) fill() {
	for {
		sp.mu.Lock()
		short := sp.short()
		paused := time.Now().Before(sp.pause)
		sp.mu.Unlock()
		if short <= 0 || paused {
			return
		}
		if rl := sp.p.relay; rl.Pairs()+rl.Awaiting() >= rl.MaxPairs() {
			// The relay is full (max_pairs): a socket dialed now would be refused, and dialing
			// again at once would spin. Look again in a second (not a growing backoff: the
			// pool must be back as soon as the relay has room).
			sp.fullPause()
			return
		}
		t, ok := sp.token()
		if !ok {
			return
		}
		if !sp.dial(t) {
			return
		}
	}
}

// fullPause stops dialing for standbyFullPause while the relay is full, saying so once per spell.
func (sp *standbyPool) fullPause() {
	sp.mu.Lock()
	now := time.Now()
	first := now.After(sp.pause.Add(standbyFullPause))
	sp.pause = now.Add(standbyFullPause)
	sp.mu.Unlock()
	if first {
		sp.p.log.Warn("relay full (max_pairs); standby connections paused", "proxy", sp.proxy, "retry_in", standbyFullPause.String())
	}
}

// short is how many sockets the pool should dial: want are kept waiting, framed sockets serving a
// client counting as waiting since they come back, but never fewer than half of want really
// waiting, for a burst. Callers hold mu.
func (sp *standbyPool) short() int {
	return max(sp.want-sp.waiting-sp.busy, sp.want/2-sp.waiting, 0)
}

// kickIfShort wakes the pool's goroutine once enough sockets are to be dialed, or soon when one
// is. Any goroutine.
func (sp *standbyPool) kickIfShort() {
	sp.mu.Lock()
	short, kickAt := sp.short(), sp.kickAt
	sp.mu.Unlock()
	switch {
	case short >= kickAt:
		sp.wake()
	case short == 1:
		sp.refill.Reset(standbyRefillDelay)
	}
}

// failed pauses dialing with a growing backoff after an attempt made at tried, and returns the
// pause and whether it grew. An attempt made before the backoff last grew belongs to the failure
// that grew it and leaves it as it is: the sockets of a batch fail together (a public proxy that
// stops refuses every one of them), and a batch of 64 must not pause the pool for the longest
// backoff at once, keeping clients off the standby path long after the public proxy is back.
func (sp *standbyPool) failed(tried time.Time) (time.Duration, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if tried.Before(sp.grown) {
		return max(time.Until(sp.pause), 0), false
	}
	sp.backoff = min(max(2*sp.backoff, firstBackoff), maxBackoff)
	sp.grown = time.Now()
	sp.pause = sp.grown.Add(sp.backoff)
	return sp.backoff, true
}

// dial starts a connect to the public proxy's endpoint and hands the socket to the relay, which
// presents the ticket's token once it is connected and then waits for a client.
func (sp *standbyPool) dial(t ticket) bool {
	endpoint := t.endpoint
	ap, err := sp.p.resolve(sp.ctx, endpoint)
	fd := -1
	if err == nil {
		fd, err = relay.Connect(ap, sp.p.live().DialTimeout.D())
	}
	if err != nil {
		if sp.ctx.Err() != nil {
			return false
		}
		wait, _ := sp.failed(time.Now())
		sp.p.log.Info("standby dial failed", "proxy", sp.proxy, "endpoint", endpoint, "retry_in", wait.String(), "err", err)
		return false
	}
	sp.mu.Lock()
	if sp.stopped {
		sp.mu.Unlock()
		_ = unix.Close(fd)
		return false
	}
	sp.waiting++
	sp.mu.Unlock()
	s := &standbySocket{sp: sp, dialed: time.Now(), gen: t.gen, addressed: t.addressed, framed: t.framed}
	await := sp.p.relay.Await
	if t.framed {
		await = sp.p.relay.AwaitFramed
	}
	if err := await(fd, t.tok[:], sp.p.live().StandbyWait.D(), s); err != nil {
		s.settle()
		if errors.Is(err, relay.ErrFull) {
			sp.fullPause() // filled up since fill looked
		}
		if !errors.Is(err, relay.ErrClosed) {
			sp.p.log.Warn("relay refused a standby socket", "proxy", sp.proxy, "err", err)
		}
		return false
	}
	return true
}

// placement returns the instance the pool keeps supplied and the live instances it last heard of.
func (sp *standbyPool) placement() (target string, instances []string) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.target, sp.instances
}

// tookToken notes that the public proxy accepted a token of the stock gen: whatever failed before
// is over.
func (sp *standbyPool) tookToken(gen uint64) {
	sp.mu.Lock()
	sp.backoff = 0
	if gen == sp.gen {
		sp.taken = gen
	}
	sp.mu.Unlock()
}

// close stops the pool. Its sockets stay with the relay until a client takes one (it is served
// if its name is still announced), they expire, or the relay drains.
func (sp *standbyPool) close() {
	sp.mu.Lock()
	sp.stopped = true
	sp.mu.Unlock()
	sp.refill.Stop()
	sp.cancel()
	<-sp.done
}

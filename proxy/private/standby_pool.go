package private

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"epsproxy/engine/hello"
	"epsproxy/engine/relay"
	"epsproxy/internal/jsonrpc"
)

// Standby connections: for every public proxy it announces names to, the private proxy keeps
// Settings.Standby sockets dialed in ahead of time, each authenticated with a one-time token it
// reserved through EPS (reserveConnections, in batches). The public proxy parks them and relays a
// client to one at once, so the client does not wait for an EPS round trip and neither EPS node
// works per connection. The stream on a standby socket is the same as on a dial-back: the client's
// hello first. The private proxy learns the name from its SNI, checks that it announced that name
// to that public proxy, dials the internal server and relays. A public proxy that does not offer
// reserveConnections (or any failure to get tokens) leaves this proxy on the dial-back path alone.
//
// No goroutine waits on a standby socket: each is dialed without blocking and handed to the relay
// (relay.Await), which sends the token once the connect completes and, when the client's hello
// arrives, calls standbySocket.First on its loop. First routes the hello and starts the internal
// connect, and the relay pairs the two sockets right there, so a client costs this process no
// goroutine wake-up. The pool's goroutine only wakes to dial replacements, a few at a time.

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
	// standbyBatchShare: tokens are reserved this many times Standby at a time (at most 1024,
	// a public proxy's default cap). One reserveConnections call costs each EPS node about half a
	// millisecond of CPU; at 512 tokens a call that is 1 µs per client and node.
	standbyBatchShare = 8
)

// errHandedOff: First passed the connection to a goroutine (a dup of the socket).
var errHandedOff = errors.New("private: connection handed to a goroutine")

// parsers are shared by the standby sockets, which only need one while a hello arrives.
var parsers = sync.Pool{New: func() any { return new(hello.Parser) }}

type reserveResult struct {
	Tokens    []string  `json:"tokens"`
	Endpoint  string    `json:"endpoint"`
	ExpiresAt time.Time `json:"expires_at"`
}

// standbyPool keeps one public proxy supplied with standby sockets.
type standbyPool struct {
	p      *Proxy
	proxy  string // the public proxy's operator name
	want   int
	batch  int
	kickAt int // replacements wanted before the goroutine is woken

	mu       sync.Mutex
	stock    [][tokenSize]byte // reserved, not used yet, oldest first
	gen      uint64            // bumped whenever the stock is replaced or dropped
	until    time.Time         // the stock's expiry
	endpoint string
	waiting  int       // handed to the relay and not taken by a client or gone yet
	pause    time.Time // no dialing before this
	backoff  time.Duration
	stopped  bool

	ctx    context.Context // ends when the pool stops: cancels a reserve call or a dial
	cancel context.CancelFunc
	kick   chan struct{}
	refill *time.Timer // kicks standbyRefillDelay after the first socket of a batch was used
	done   chan struct{}
}

func newStandbyPool(p *Proxy, proxy string) *standbyPool {
	ctx, cancel := context.WithCancel(context.Background())
	sp := &standbyPool{
		p: p, proxy: proxy, want: p.s.Standby, batch: min(max(standbyBatchShare*p.s.Standby, 16), 1024),
		kickAt: max(p.s.Standby/standbyKickShare, 1),
		ctx:    ctx,
		cancel: cancel,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	sp.refill = time.AfterFunc(time.Hour, sp.wake)
	sp.refill.Stop()
	return sp
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
		short := sp.want - sp.waiting
		paused := time.Now().Before(sp.pause)
		sp.mu.Unlock()
		if short <= 0 || paused {
			return
		}
		tok, endpoint, gen, ok := sp.token()
		if !ok {
			return
		}
		if !sp.dial(tok, endpoint, gen) {
			return
		}
	}
}

// token takes a token from the stock, reserving a new batch when the stock is used up.
func (sp *standbyPool) token() ([tokenSize]byte, string, uint64, bool) {
	sp.mu.Lock()
	if len(sp.stock) == 0 || time.Until(sp.until) < standbyTokenMargin {
		sp.stock = nil
		sp.mu.Unlock()
		if !sp.reserve() {
			return [tokenSize]byte{}, "", 0, false
		}
		sp.mu.Lock()
	}
	defer sp.mu.Unlock()
	if len(sp.stock) == 0 {
		return [tokenSize]byte{}, "", 0, false
	}
	tok := sp.stock[0]
	sp.stock = sp.stock[1:]
	return tok, sp.endpoint, sp.gen, true
}

// reserve asks the public proxy for a batch of tokens.
func (sp *standbyPool) reserve() bool {
	var res reserveResult
	err := sp.p.client.Call(sp.ctx, sp.proxy, "reserveConnections", map[string]int{"count": sp.batch}, &res)
	if sp.ctx.Err() != nil {
		return false
	}
	if err == nil {
		err = sp.accept(res)
	}
	if err != nil {
		wait := sp.failed()
		var je *jsonrpc.Error
		if errors.As(err, &je) && (je.Code == jsonrpc.CodeMethodNotFound || je.Code == jsonrpc.CodeNotAllowed || je.Code == jsonrpc.CodeNotFound) {
			wait = standbyRetryOff
			sp.mu.Lock()
			sp.pause = time.Now().Add(wait)
			sp.mu.Unlock()
		}
		sp.p.log.Info("standby connections unavailable; using dial-backs", "proxy", sp.proxy, "retry_in", wait.String(), "err", err)
		return false
	}
	return true
}

// accept checks a reserveConnections result and stocks its tokens.
func (sp *standbyPool) accept(res reserveResult) error {
	if err := checkHostPort(res.Endpoint); err != nil {
		return jsonrpc.Errorf(jsonrpc.CodeBadRequest, "reserveConnections returned a bad endpoint: %v", err)
	}
	if pin, pinned := sp.p.s.Endpoints[sp.proxy]; pinned && pin != res.Endpoint {
		return jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "endpoint %s is not the one pinned for %s", res.Endpoint, sp.proxy)
	}
	stock := make([][tokenSize]byte, 0, len(res.Tokens))
	for _, t := range res.Tokens {
		raw, err := base64.StdEncoding.DecodeString(t)
		if err != nil || len(raw) != tokenSize {
			return jsonrpc.Errorf(jsonrpc.CodeBadRequest, "reserveConnections returned a token that is not the base64 of %d bytes", tokenSize)
		}
		stock = append(stock, [tokenSize]byte(raw))
	}
	sp.mu.Lock()
	sp.stock, sp.until, sp.endpoint = stock, res.ExpiresAt, res.Endpoint
	sp.gen++
	sp.mu.Unlock()
	return nil
}

// failed pauses dialing with a growing backoff and returns the pause.
func (sp *standbyPool) failed() time.Duration {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.backoff = min(max(2*sp.backoff, firstBackoff), maxBackoff)
	sp.pause = time.Now().Add(sp.backoff)
	return sp.backoff
}

// dial starts a connect to the public proxy's endpoint and hands the socket to the relay, which
// presents tok once it is connected and then waits for a client.
func (sp *standbyPool) dial(tok [tokenSize]byte, endpoint string, gen uint64) bool {
	fd, err := sp.connect(endpoint)
	if err != nil {
		if sp.ctx.Err() != nil {
			return false
		}
		wait := sp.failed()
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
	s := &standbySocket{sp: sp, dialed: time.Now(), gen: gen}
	if err := sp.p.relay.Await(fd, tok[:], sp.p.s.StandbyWait.D(), s); err != nil {
		s.settle()
		if !errors.Is(err, relay.ErrClosed) {
			sp.p.log.Warn("relay refused a standby socket", "proxy", sp.proxy, "err", err)
		}
		return false
	}
	return true
}

// connect starts a non-blocking connect to endpoint, resolving a name first.
func (sp *standbyPool) connect(endpoint string) (int, error) {
	ap, err := netip.ParseAddrPort(endpoint)
	if err != nil {
		host, port, err := net.SplitHostPort(endpoint)
		if err != nil {
			return -1, err
		}
		ctx, cancel := context.WithTimeout(sp.ctx, sp.p.s.DialTimeout.D())
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		cancel()
		if err != nil {
			return -1, err
		}
		if len(addrs) == 0 {
			return -1, errors.New("no address for " + host)
		}
		ap, err = netip.ParseAddrPort(net.JoinHostPort(addrs[0].String(), port))
		if err != nil {
			return -1, err
		}
	}
	return connectAddr(ap, sp.p.s.DialTimeout.D())
}

// standbySocket is one standby socket held by the relay. Its methods run on the relay's loop.
type standbySocket struct {
	sp      *standbyPool
	dialed  time.Time
	gen     uint64
	settled bool // taken by a client or gone: no longer counted as waiting
}

// settle takes the socket off the pool's count and wakes the pool's goroutine once enough
// sockets are to be replaced.
func (s *standbySocket) settle() {
	if s.settled {
		return
	}
	s.settled = true
	sp := s.sp
	sp.mu.Lock()
	sp.waiting--
	short := sp.want - sp.waiting
	sp.mu.Unlock()
	switch {
	case short >= sp.kickAt:
		sp.wake()
	case short == 1:
		sp.refill.Reset(standbyRefillDelay)
	}
}

// First routes the client's hello, which the public proxy replays first on a standby socket, and
// returns the internal connection to pair it with.
func (s *standbySocket) First(fd int, data []byte) (int, any, error) {
	sp := s.sp
	p := sp.p
	ps := parsers.Get().(*hello.Parser)
	ch, err := ps.Parse(data)
	sni := string(ch.ServerName)
	limit := ps.MaxInput()
	parsers.Put(ps)
	if errors.Is(err, hello.ErrIncomplete) && len(data) < limit {
		return -1, nil, relay.ErrMore
	}
	s.settle()
	sp.tookToken()
	if err != nil {
		p.log.Info("standby connection closed", "reason", "bad_hello", "from", sp.proxy, "err", err)
		return -1, nil, err
	}
	a, ok := p.announced(sni, sp.proxy)
	if !ok {
		p.log.Info("standby connection refused", "reason", "not_announced", "domain", sni, "from", sp.proxy)
		return -1, nil, errors.New("not announced")
	}
	target := a.Target
	if target == "" {
		target = p.s.InternalEndpoint
	}
	ap, perr := netip.ParseAddrPort(target)
	if p.term != nil || perr != nil {
		// TLS terminated here, or a target by name: the blocking path, on a goroutine.
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return -1, nil, err
		}
		go p.serveStandby(dup, sp.proxy, a, target, append([]byte(nil), data...))
		return -1, nil, errHandedOff
	}
	ifd, err := connectAddr(ap, p.s.DialTimeout.D())
	if err != nil {
		p.log.Warn("internal server unreachable; client closed", "domain", sni, "target", target, "err", err)
		return -1, nil, err
	}
	return ifd, a.Domain, nil
}

// Gone notes why a standby socket ended without a client.
func (s *standbySocket) Gone(err error) {
	s.settle()
	sp := s.sp
	quick := time.Since(s.dialed) < standbyQuickClose
	switch {
	case errors.Is(err, relay.ErrClosed) || errors.Is(err, relay.ErrAwaitTimeout):
	case errors.Is(err, io.EOF) && quick:
		// Closed right after the token: the public proxy did not take it.
		sp.refused(s.gen)
	case errors.Is(err, io.EOF):
		// Parked, then closed unused (standby_ttl): the token was taken.
		sp.tookToken()
	default:
		wait := sp.failed()
		sp.p.log.Info("standby connection failed", "proxy", sp.proxy, "retry_in", wait.String(), "err", err)
	}
}

// tookToken notes that the public proxy accepted a token: whatever failed before is over.
func (sp *standbyPool) tookToken() {
	sp.mu.Lock()
	sp.backoff = 0
	sp.mu.Unlock()
}

// refused drops the stock a refused token came from: the others likely are not accepted either
// (a restarted public proxy knows none of them). Sockets of the same stock refused later change
// nothing.
func (sp *standbyPool) refused(gen uint64) {
	sp.mu.Lock()
	if gen != sp.gen {
		sp.mu.Unlock()
		return
	}
	sp.stock = nil
	sp.gen++
	sp.mu.Unlock()
	wait := sp.failed()
	sp.p.log.Info("standby connection refused by the public proxy; reserving new tokens", "proxy", sp.proxy, "retry_in", wait.String())
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

// serveStandby relays a standby connection the loop handed over (fd, a duplicate of the socket,
// with the hello already read) when that needs blocking calls: TLS terminated here, or a target
// given by name.
func (p *Proxy) serveStandby(fd int, proxy string, a Announcement, target string, hello []byte) {
	f := os.NewFile(uintptr(fd), "standby")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		p.log.Warn("standby connection lost", "domain", a.Domain, "from", proxy, "err", err)
		return
	}
	c := nc.(*net.TCPConn)
	if p.term != nil {
		if err := p.term.serve(&replayConn{TCPConn: c, pre: hello}, target); err != nil {
			c.Close()
		}
		return
	}
	internal, err := net.DialTimeout("tcp", target, p.s.DialTimeout.D())
	if err != nil {
		c.Close()
		p.log.Warn("internal server unreachable; client closed", "domain", a.Domain, "target", target, "err", err)
		return
	}
	if err := p.relay.AddConns(c, internal.(*net.TCPConn), nil, hello, a.Domain); err != nil {
		p.log.Warn("relay refused a pair", "domain", a.Domain, "err", err)
	}
}

// announced finds the live announcement of name to proxy: the name itself, else the wildcard of
// its parent, as the public proxy's table matches.
func (p *Proxy) announced(name, proxy string) (Announcement, bool) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.anns[key{name, proxy}]; ok && live(a, now) {
		return a, true
	}
	if dot := strings.IndexByte(name, '.'); dot > 0 && dot < len(name)-1 {
		if a, ok := p.anns[key{"*." + name[dot+1:], proxy}]; ok && live(a, now) {
			return a, true
		}
	}
	return Announcement{}, false
}

// replayConn gives the bytes already read from a standby socket back to the TLS terminator.
type replayConn struct {
	*net.TCPConn
	pre []byte
}

func (r *replayConn) Read(b []byte) (int, error) {
	if len(r.pre) > 0 {
		n := copy(b, r.pre)
		r.pre = r.pre[n:]
		return n, nil
	}
	return r.TCPConn.Read(b)
}

// standbyManager keeps a pool for every public proxy with a live announcement.
func (p *Proxy) standbyManager() {
	defer p.wg.Done()
	pools := map[string]*standbyPool{}
	defer func() {
		for _, sp := range pools {
			sp.close()
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		now := time.Now()
		want := map[string]bool{}
		p.mu.Lock()
		for _, a := range p.anns {
			if live(a, now) {
				want[a.Proxy] = true
			}
		}
		p.mu.Unlock()
		for proxy := range want {
			if pools[proxy] == nil {
				sp := newStandbyPool(p, proxy)
				pools[proxy] = sp
				go sp.run()
			}
		}
		for proxy, sp := range pools {
			if !want[proxy] {
				sp.close()
				delete(pools, proxy)
			}
		}
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

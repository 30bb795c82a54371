package private

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"epsproxy/engine/hello"
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

const (
	// standbyRetryOff is how long a public proxy that refuses reserveConnections is left alone.
	standbyRetryOff = 5 * time.Minute
	// standbyQuickClose: a socket closed this soon after its token, without a byte, was refused
	// (token unknown to a restarted public proxy, cap reached): drop the stock and back off.
	standbyQuickClose = time.Second
	// standbyTokenMargin: tokens this close to their expiry are not used.
	standbyTokenMargin = 10 * time.Second
	standbyHelloWait   = 5 * time.Second
)

// parsers are shared by the standby sockets, which only need one while a hello arrives.
var parsers = sync.Pool{New: func() any { return new(hello.Parser) }}

type reserveResult struct {
	Tokens    []string  `json:"tokens"`
	Endpoint  string    `json:"endpoint"`
	ExpiresAt time.Time `json:"expires_at"`
}

// standbyPool keeps one public proxy supplied with standby sockets.
type standbyPool struct {
	p     *Proxy
	proxy string // the public proxy's operator name
	want  int
	batch int

	mu       sync.Mutex
	stock    [][tokenSize]byte // reserved, not used yet, oldest first
	gen      uint64            // bumped whenever the stock is replaced or dropped
	until    time.Time         // the stock's expiry
	endpoint string
	waiting  map[net.Conn]struct{} // dialed in, waiting for a client
	pause    time.Time             // no dialing before this
	backoff  time.Duration
	stopped  bool

	ctx    context.Context // ends when the pool stops: cancels a reserve call or a dial
	cancel context.CancelFunc
	kick   chan struct{}
	done   chan struct{}
}

func newStandbyPool(p *Proxy, proxy string) *standbyPool {
	ctx, cancel := context.WithCancel(context.Background())
	return &standbyPool{
		p: p, proxy: proxy, want: p.s.Standby, batch: min(max(4*p.s.Standby, 16), 1024),
		waiting: map[net.Conn]struct{}{},
		ctx:     ctx,
		cancel:  cancel,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
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
		short := sp.want - len(sp.waiting)
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

// dial connects to the public proxy's endpoint, presents tok and leaves the socket waiting.
func (sp *standbyPool) dial(tok [tokenSize]byte, endpoint string, gen uint64) bool {
	// No TCP keep-alive: a standby socket lives at most standby_wait, and the four setsockopt
	// calls it takes are a tenth of the socket's setup.
	d := net.Dialer{Timeout: sp.p.s.DialTimeout.D(), KeepAlive: -1}
	c, err := d.DialContext(sp.ctx, "tcp", endpoint)
	if err == nil {
		_ = c.SetWriteDeadline(time.Now().Add(sp.p.s.DialTimeout.D()))
		if _, err = c.Write(tok[:]); err != nil {
			c.Close()
		}
	}
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
		c.Close()
		return false
	}
	sp.waiting[c] = struct{}{}
	sp.mu.Unlock()
	go sp.wait(c.(*net.TCPConn), time.Now(), gen)
	return true
}

// wait reads the first client's hello on a standby socket and serves it, or notices that the
// public proxy closed the socket (unused past its standby_ttl, refused, shut down).
func (sp *standbyPool) wait(c *net.TCPConn, dialed time.Time, gen uint64) {
	_ = c.SetReadDeadline(dialed.Add(sp.p.s.StandbyWait.D()))
	// On the heap: a 4 KiB array would grow every waiting goroutine's stack.
	first := make([]byte, 4096)
	n, err := c.Read(first)
	if !sp.release(c) {
		// Stopped: Stop closed c.
		return
	}
	quick := time.Since(dialed) < standbyQuickClose
	if n == 0 {
		c.Close()
		if quick && !errors.Is(err, net.ErrClosed) {
			sp.refused(gen)
			return
		}
	}
	if !quick || n > 0 {
		// The public proxy took the token: whatever failed before is over.
		sp.mu.Lock()
		sp.backoff = 0
		sp.mu.Unlock()
	}
	if n == 0 {
		return
	}
	sp.p.serveStandby(c, sp.proxy, first[:n])
}

// release takes c off the waiting set and asks for a replacement; false if the pool stopped.
func (sp *standbyPool) release(c net.Conn) bool {
	sp.mu.Lock()
	_, ok := sp.waiting[c]
	delete(sp.waiting, c)
	sp.mu.Unlock()
	select {
	case sp.kick <- struct{}{}:
	default:
	}
	return ok
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

// close stops the pool and closes its waiting sockets.
func (sp *standbyPool) close() {
	sp.mu.Lock()
	sp.stopped = true
	for c := range sp.waiting {
		c.Close()
	}
	clear(sp.waiting)
	sp.mu.Unlock()
	sp.cancel()
	<-sp.done
}

// serveStandby reads the rest of the hello on a standby socket of proxy, routes it by its SNI to
// the announcement made to that proxy and relays it like a dial-back.
func (p *Proxy) serveStandby(c *net.TCPConn, proxy string, buf []byte) {
	_ = c.SetReadDeadline(time.Now().Add(standbyHelloWait))
	ps := parsers.Get().(*hello.Parser)
	var (
		sni string
		err error
	)
	for {
		var ch hello.ClientHello
		ch, err = ps.Parse(buf)
		if err == nil {
			sni = string(ch.ServerName)
			break
		}
		if !errors.Is(err, hello.ErrIncomplete) {
			break
		}
		if len(buf) >= ps.MaxInput() {
			err = errors.New("hello too large")
			break
		}
		var n int
		buf = growTo(buf, len(buf)+4096)
		n, err = c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && n == 0 {
			break
		}
	}
	parsers.Put(ps)
	if err != nil {
		c.Close()
		p.log.Info("standby connection closed", "reason", "bad_hello", "from", proxy, "err", err)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	a, ok := p.announced(sni, proxy)
	if !ok {
		c.Close()
		p.log.Info("standby connection refused", "reason", "not_announced", "domain", sni, "from", proxy)
		return
	}
	target := a.Target
	if target == "" {
		target = p.s.InternalEndpoint
	}
	if p.term != nil {
		if err := p.term.serve(&replayConn{TCPConn: c, pre: buf}, target); err != nil {
			c.Close()
		}
		return
	}
	if fd, raw, err := connectRaw(target, p.s.DialTimeout.D()); raw {
		if err != nil {
			c.Close()
			p.log.Warn("internal server unreachable; client closed", "domain", sni, "target", target, "err", err)
			return
		}
		if err := p.relay.AddConnFD(c, fd, nil, buf, a.Domain); err != nil {
			p.log.Warn("relay refused a pair", "domain", sni, "err", err)
		}
		return
	}
	internal, err := net.DialTimeout("tcp", target, p.s.DialTimeout.D())
	if err != nil {
		c.Close()
		p.log.Warn("internal server unreachable; client closed", "domain", sni, "target", target, "err", err)
		return
	}
	if err := p.relay.AddConns(c, internal.(*net.TCPConn), nil, buf, a.Domain); err != nil {
		p.log.Warn("relay refused a pair", "domain", sni, "err", err)
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

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
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

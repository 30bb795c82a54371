package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"

	"epsproxy/engine/hello"
	"epsproxy/internal/netsrc"
	"epsproxy/proxy/wire"
)

// handler is the gnet event handler. Its methods run on the event loops (OnTick excepted).
type handler struct {
	gnet.BuiltinEventEngine
	e *Engine
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.e.mu.Lock()
	h.e.eng = eng
	h.e.booted = true
	stopping := h.e.stopping
	h.e.mu.Unlock()
	h.e.deferAccept(eng)
	close(h.e.ready)
	if stopping {
		return gnet.Shutdown
	}
	return gnet.None
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	e := h.e
	if f := e.onAccept.Load(); f != nil {
		(*f)()
	}
	now := time.Now()
	s := &conn{c: c, loop: e.loopOf(c.EventLoop()), public: localPort(c) != e.internalPort, src: remoteIP(c)}
	s.key = netsrc.Of(s.src)
	c.SetContext(s)
	e.gnetConns.Add(1)
	lim, what := e.live.pubRate.Load(), "public"
	if !s.public {
		lim, what = e.live.intRate.Load(), "internal"
	}
	if s.public {
		e.stats.Accepted.Add(1)
	}
	switch {
	case e.fdsInUse() > e.fdLimit-int64(e.cfg.FDReserve):
		e.stats.Overloaded.Add(1)
		return h.refuse(s, "fd_budget", what)
	case !lim.allow(s.key, now):
		e.stats.RateLimited.Add(1)
		return h.refuse(s, "rate_limited", what)
	case s.public && e.helloConns.Load() >= e.live.maxHelloConns.Load():
		e.stats.Overloaded.Add(1)
		return h.refuse(s, "too_many_hellos", what)
	}
	if s.public {
		hit := e.helloCap.enter(s.key)
		if hit.refused() {
			e.stats.SourceBusy.Add(1)
			return h.refuse(s, "source_busy", what)
		}
		s.capped = hit == capOK
		s.phase = phaseHello
		e.helloConns.Add(1)
		s.loop.hello.push(s, now.Add(e.helloTimeout()))
		return nil, gnet.None
	}
	hit := e.tokenCap.enter(s.key)
	switch hit {
	case capTotal:
		e.stats.Overloaded.Add(1)
		return h.refuse(s, "too_many_tokens", what)
	case capSource:
		e.stats.SourceBusy.Add(1)
		return h.refuse(s, "source_busy", what)
	}
	s.capped = hit == capOK
	s.phase = phaseToken
	e.tokenConns.Add(1)
	s.loop.token.push(s, now.Add(e.tokenTimeout()))
	return nil, gnet.None
}

// leavePhase uncounts s from the hello or token phase it is leaving. Every way out of those
// phases (matched, handed off, parked, closed for any reason) passes here once: the caller then
// changes s.phase.
func (e *Engine) leavePhase(s *conn) {
	switch s.phase {
	case phaseHello:
		e.helloConns.Add(-1)
		if s.capped {
			e.helloCap.leave(s.key)
		}
	case phaseToken:
		e.tokenConns.Add(-1)
		if s.capped {
			e.tokenCap.leave(s.key)
		}
	}
	s.capped = false
}

// refuse closes a connection OnOpen will not admit; the caller counts why.
func (h *handler) refuse(s *conn, reason, listener string) ([]byte, gnet.Action) {
	if s.public {
		h.e.stats.Refused.Add(1)
	}
	if h.e.refused(s, reason) {
		h.e.log.Info("connection refused", "listener", listener, "reason", reason, "remote", s.src.String())
	}
	s.phase = phaseClosed
	return nil, gnet.Close
}

func (h *handler) OnClose(c gnet.Conn, _ error) gnet.Action {
	s, _ := c.Context().(*conn)
	if s == nil {
		return gnet.None
	}
	h.e.gnetConns.Add(-1)
	switch s.phase {
	case phaseHandedOff:
		return gnet.None
	case phaseHello, phaseToken:
		h.e.leavePhase(s)
	case phaseWaiting:
		h.e.pending.drop(s)
	}
	s.phase = phaseClosed
	s.unlink()
	s.release()
	return gnet.None
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	s := c.Context().(*conn)
	switch s.phase {
	case phaseHello:
		return h.onHello(s)
	case phaseWaiting:
		// Bytes after the hello (TLS early data) wait in gnet's buffer until the handoff
		// collects them; a client that keeps sending without an answer is cut off.
		if c.InboundBuffered()+s.hello.Len() > h.e.cfg.MaxHello {
			if h.e.refused(s, "too_much_early_data") {
				h.e.log.Info("client refused", "reason", "too_much_early_data", "remote", s.src.String(), "domain", s.domain)
			}
			return gnet.Close
		}
		return gnet.None
	case phaseToken:
		return h.onToken(s)
	}
	return gnet.Close
}

// onHello parses what the client sent so far and, once the hello is complete and routed, files
// the client under a fresh token and tells the signaling side.
func (h *handler) onHello(s *conn) gnet.Action {
	e := h.e
	buf, _ := s.c.Peek(-1)
	ch, err := s.loop.parser.Parse(buf)
	if errors.Is(err, hello.ErrIncomplete) {
		if len(buf) > e.cfg.MaxHello {
			return h.reject(s, "too_large", nil)
		}
		return gnet.None
	}
	if err != nil {
		return h.reject(s, hello.Reason(err), err)
	}
	now := time.Now()
	ann, ok := e.routes.Lookup(ch.ServerName, now)
	if !ok {
		e.stats.NoRoute.Add(1)
		return h.reject(s, "no_route", nil, "sni", string(ch.ServerName))
	}
	s.domain, s.operator = ann.Domain, ann.Operator
	if e.obs != nil {
		e.obs.Routed(s.domain)
	}
	if fd, mode, loop, ok := e.standby.take(ann.Operator, now); ok {
		return h.toStandby(s, fd, mode, loop, buf)
	}
	if _, err := rand.Read(s.token[:]); err != nil {
		return h.reject(s, "no_entropy", err)
	}
	s.hello = bytebufferpool.Get()
	_, _ = s.hello.Write(buf)
	_, _ = s.c.Discard(len(buf))
	if !e.pending.put(s) {
		e.stats.Overloaded.Add(1)
		return h.reject(s, "too_many_pending", nil, "domain", s.domain)
	}
	e.leavePhase(s)
	s.phase = phaseWaiting
	s.loop.waiting.push(s, now.Add(e.acceptTimeout()))
	if err := e.notify(Notice{Domain: s.domain, Operator: s.operator, Token: s.token, Addresses: clientAddresses(s.c)}); err != nil {
		e.pending.drop(s)
		e.stats.NotifyFailed.Add(1)
		if e.refused(s, "notify_failed") {
			e.log.Info("client refused", "reason", "notify_failed", "domain", s.domain, "announcer", s.operator, "remote", s.src.String(), "err", err)
		}
		return gnet.Close
	}
	e.stats.Matched.Add(1)
	e.log.Debug("client waiting", "domain", s.domain, "announcer", s.operator, "remote", s.src.String())
	return gnet.None
}

// toStandby relays a routed client to a parked standby socket of its announcer, on the client's
// own loop: the private side gets the hello at once, no token and no EPS call involved; after
// the address header if its token asked for it, and in frames if it asked for those, in which
// case the socket is parked again once the client is done (keeper). loop is the relay loop that
// holds the socket, or -1.
func (h *handler) toStandby(s *conn, private int, mode wire.SocketMode, loop int, buf []byte) gnet.Action {
	e := h.e
	fd, err := s.c.Dup()
	if err != nil {
		_ = unix.Close(private)
		return h.reject(s, "dup_failed", err)
	}
	e.leavePhase(s)
	s.phase = phaseHandedOff
	s.unlink()
	// buf is everything the client sent so far; Add copies it before gnet reuses its buffer.
	if mode.ClientAddress {
		hb := bytebufferpool.Get()
		defer bytebufferpool.Put(hb)
		hb.B = append(wire.AppendAddressHeader(hb.B[:0], clientAddresses(s.c)), buf...)
		buf = hb.B
	}
	if mode.Framed {
		err = e.relay.AddFramedHeld(loop, fd, private, nil, buf, s.domain, &keeper{e: e, f: filed{s.operator, mode}})
	} else {
		err = e.relay.Add(fd, private, nil, buf, s.domain)
	}
	if err != nil {
		if e.refused(s, "relay_refused") {
			e.log.Warn("relay refused a pair", "domain", s.domain, "err", err)
		}
		return gnet.Close
	}
	if e.obs != nil {
		e.obs.Relayed(s.domain)
	}
	e.stats.Matched.Add(1)
	e.stats.Paired.Add(1)
	e.stats.StandbyPaired.Add(1)
	e.log.Debug("client relayed to a standby connection", "domain", s.domain, "announcer", s.operator, "remote", s.src.String())
	return gnet.Close
}

func (h *handler) reject(s *conn, reason string, err error, attrs ...any) gnet.Action {
	h.e.stats.Refused.Add(1)
	if !h.e.refused(s, reason) {
		return gnet.Close
	}
	args := append([]any{"reason", reason, "remote", s.src.String()}, attrs...)
	if err != nil {
		args = append(args, "err", err.Error())
	}
	h.e.log.Info("client refused", args...)
	return gnet.Close
}

// onToken reads the private side's token and pairs it with its client.
func (h *handler) onToken(s *conn) gnet.Action {
	e := h.e
	n := s.c.InboundBuffered()
	if n < wire.TokenSize {
		return gnet.None
	}
	if n > wire.TokenSize {
		// The private side must wait for the replayed hello before it says anything: bytes after
		// the token are not a TLS server talking.
		e.stats.BadTokens.Add(1)
		if e.refused(s, "bytes_after_token") {
			e.log.Info("internal connection refused", "reason", "bytes_after_token", "remote", s.src.String())
		}
		return gnet.Close
	}
	b, _ := s.c.Peek(wire.TokenSize)
	var tok wire.Token
	copy(tok[:], b)
	_, _ = s.c.Discard(wire.TokenSize)
	client := e.pending.take(tok)
	if client == nil {
		if f, ok := e.standby.claim(tok, time.Now()); ok {
			return h.park(s, f)
		}
		// Unknown, used or expired: close without a word, so a token reveals nothing.
		e.stats.BadTokens.Add(1)
		if e.refused(s, "unknown_token") {
			e.log.Info("internal connection refused", "reason", "unknown_token", "remote", s.src.String())
		}
		return gnet.Close
	}
	fd, err := s.c.Dup()
	if err != nil {
		if e.refused(client, "dup_failed") {
			e.log.Warn("dup of the private side failed", "domain", client.domain, "err", err)
		}
		h.closeClient(client)
		return gnet.Close
	}
	e.leavePhase(s)
	s.phase = phaseHandedOff
	s.unlink()
	if client.loop == s.loop {
		// Same loop: no need to wake it through Execute.
		e.handoff(client, fd)
		return gnet.Close
	}
	if err := client.loop.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		e.handoff(client, fd)
		return nil
	})); err != nil {
		_ = unix.Close(fd)
		h.closeClient(client)
	}
	return gnet.Close
}

// park dups a private side that presented a standby token out of gnet and files it for the
// next client of the operator that reserved the token.
func (h *handler) park(s *conn, f filed) gnet.Action {
	e := h.e
	fd, err := s.c.Dup()
	if err != nil {
		e.log.Warn("dup of a standby connection failed", "err", err)
		return gnet.Close
	}
	e.leavePhase(s)
	s.phase = phaseHandedOff
	s.unlink()
	if !e.standby.park(f, fd, time.Now(), false) {
		_ = unix.Close(fd)
		if e.refused(s, "standby_full") {
			e.log.Info("internal connection refused", "reason", "standby_full", "operator", f.operator, "remote", s.src.String())
		}
		return gnet.Close
	}
	e.stats.Parked.Add(1)
	return gnet.Close
}

// closeClient closes a client claimed from the pending table, on its own loop.
func (h *handler) closeClient(client *conn) {
	_ = client.loop.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if client.phase == phaseWaiting {
			_ = client.loop.el.Close(client.c)
		}
		return nil
	}))
}

// handoff runs on the client's loop: dup the client out of gnet, and give both sockets to the
// relay with everything the client sent so far to replay to the private side.
func (e *Engine) handoff(client *conn, private int) {
	if client.phase != phaseWaiting {
		// The client went away between the token and now.
		_ = unix.Close(private)
		return
	}
	fd, err := client.c.Dup()
	if err != nil {
		if e.refused(client, "dup_failed") {
			e.log.Warn("dup of the client failed", "domain", client.domain, "err", err)
		}
		_ = unix.Close(private)
		_ = client.loop.el.Close(client.c)
		return
	}
	if rest, _ := client.c.Peek(-1); len(rest) > 0 {
		_, _ = client.hello.Write(rest)
	}
	client.phase = phaseHandedOff
	client.unlink()
	replay := client.hello
	client.hello = nil
	_ = client.loop.el.Close(client.c)
	err = e.relay.Add(fd, private, nil, replay.B, client.domain)
	bytebufferpool.Put(replay)
	if err != nil {
		if e.refused(client, "relay_refused") {
			e.log.Warn("relay refused a pair", "domain", client.domain, "err", err)
		}
		return
	}
	if e.obs != nil {
		e.obs.Relayed(client.domain)
	}
	e.stats.Paired.Add(1)
}

// OnTick sweeps every loop's deadlines on that loop, every Tick while a connection is in a timed
// phase (hello, token, waiting for its private side). With none, it only sweeps the standby
// table and flushes the refusal summary, every idleTick, and wakes no loop: an idle proxy stays
// asleep. A connection that arrives then has its first deadline checked up to idleTick late.
func (h *handler) OnTick() (time.Duration, gnet.Action) {
	e := h.e
	e.standby.sweep(time.Now())
	e.refusals.flush(time.Now(), false)
	if e.helloConns.Load() == 0 && e.tokenConns.Load() == 0 && e.pending.len() == 0 {
		return max(idleTick, e.cfg.Tick), gnet.None
	}
	e.loops.Range(func(_, v any) bool {
		l := v.(*loop)
		_ = l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			e.sweep(l, time.Now())
			return nil
		}))
		return true
	})
	return e.cfg.Tick, gnet.None
}

// idleTick is the ticker's period while no connection is in a timed phase.
const idleTick = time.Second

// sweep closes the loop's connections whose phase deadline has passed.
func (e *Engine) sweep(l *loop, now time.Time) {
	for s := l.hello.expired(now); s != nil; s = l.hello.expired(now) {
		e.stats.HelloTimeouts.Add(1)
		e.stats.Refused.Add(1)
		if e.refused(s, "hello_timeout") {
			e.log.Info("client refused", "reason", "hello_timeout", "remote", s.src.String())
		}
		_ = l.el.Close(s.c)
	}
	for s := l.waiting.expired(now); s != nil; s = l.waiting.expired(now) {
		// Claim it first: its private side may be pairing with it right now on another loop.
		if e.pending.drop(s) {
			e.stats.Expired.Add(1)
			if e.refused(s, "accept_timeout") {
				e.log.Info("client refused", "reason", "accept_timeout", "domain", s.domain, "announcer", s.operator, "remote", s.src.String())
			}
			_ = l.el.Close(s.c)
		}
	}
	for s := l.token.expired(now); s != nil; s = l.token.expired(now) {
		e.stats.BadTokens.Add(1)
		if e.refused(s, "token_timeout") {
			e.log.Info("internal connection refused", "reason", "token_timeout", "remote", s.src.String())
		}
		_ = l.el.Close(s.c)
	}
}

func localPort(c gnet.Conn) int {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func remoteIP(c gnet.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

package private

import (
	"context"
	"net"
	"slices"
	"time"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/matcher"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// A dial-back: a client waits at a public proxy that has no standby socket of this proxy, so it
// tells this proxy through EPS (incomingConnection) where to dial and which token to present.

type dialJob struct {
	a                        Announcement
	domain, endpoint, target string
	token                    wire.Token
	addrs                    wire.Addresses // the client's, as incomingConnection gave them
}

// incomingConnection queues a dial-back for a client waiting at a public proxy. It answers at
// once; the dial happens on the bounded dial pool.
func (p *Proxy) incomingConnection(ctx context.Context, c *epsclient.Call, ps wire.IncomingParams) (any, error) {
	if err := proxy.CheckHostPort(ps.Endpoint); err != nil {
		p.refused("", refusedBadRequest)
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "endpoint: %v", err)
	}
	domain, err := matcher.Normalize(ps.Domain)
	if err != nil {
		p.refused("", refusedBadRequest)
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "domain %q: %v", ps.Domain, err)
	}
	a, ok := p.anns.get(domain, c.Caller.Name, time.Now())
	if !ok {
		p.unannounced()
		p.log.Info("incoming connection refused", "reason", "not_announced", "domain", domain, "from", c.Caller.Name)
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotFound, "no matching connection found: %s is not announced to %s", domain, c.Caller.Name)
	}
	p.domains.Get(a.Domain).Accepted()
	err = p.mayDialBack(c.Caller.Name, ps.Endpoint)
	if err != nil && p.placeAgain(c.Caller.Name) {
		err = p.mayDialBack(c.Caller.Name, ps.Endpoint)
	}
	if err != nil {
		p.refused(a.Domain, refusedEndpoint)
		p.log.Warn("incoming connection refused", "reason", "endpoint_not_allowed", "domain", domain, "from", c.Caller.Name, "endpoint", ps.Endpoint)
		return nil, err
	}
	if _, err := p.addressHead(nil, a, ps.Addresses()); err != nil {
		// Refused before any dial, so the public proxy closes the client at once.
		p.log.Info("incoming connection refused", "reason", "client_address_unknown", "domain", domain, "from", c.Caller.Name)
		return nil, jsonrpc.Errorf(jsonrpc.CodeBadRequest, "%s wants the client's addresses (proxy_protocol) and the call has none", domain)
	}
	job := dialJob{a: a, domain: domain, endpoint: ps.Endpoint, target: p.target(a), token: ps.Token, addrs: ps.Addresses()}
	select {
	case p.dials <- job:
	default:
		p.refused(a.Domain, refusedDialQueue)
		return nil, jsonrpc.Errorf(jsonrpc.CodeOverloaded, "%s has %d dial-backs queued", p.name, cap(p.dials))
	}
	return wire.OK, nil
}

func (p *Proxy) dialWorker() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case j := <-p.dials:
			p.dialBack(j)
		}
	}
}

// dialBack connects the internal server first, so that a dead one costs the client milliseconds
// rather than the public side's accept timeout: the token is still presented, and closing right
// after it closes the waiting client at once.
func (p *Proxy) dialBack(j dialJob) {
	ctx, cancel := context.WithTimeout(context.Background(), p.live().DialTimeout.D())
	defer cancel()
	var (
		internal net.Conn
		ierr     error
	)
	if p.term == nil {
		internal, ierr = p.dialer.DialContext(ctx, "tcp", j.target)
	}
	closeInternal := func() {
		if internal != nil {
			internal.Close()
		}
	}
	public, err := p.dialer.DialContext(ctx, "tcp", j.endpoint)
	if err == nil {
		_ = public.SetWriteDeadline(time.Now().Add(p.live().DialTimeout.D()))
		if _, err = public.Write(j.token[:]); err != nil {
			public.Close()
		}
	}
	if err != nil {
		closeInternal()
		p.refused(j.domain, refusedDialBack)
		p.log.Warn("dial-back failed", "domain", j.domain, "endpoint", j.endpoint, "err", err)
		return
	}
	_ = public.SetWriteDeadline(time.Time{})
	if p.term != nil {
		// The internal address is reached per request by the HTTP forwarder.
		if err := p.term.serve(public, j.target, p.forwardedFor(j.a, j.addrs)); err != nil {
			public.Close()
			p.refused(j.domain, refusedTerminate)
			p.log.Warn("terminated connection refused; client closed", "domain", j.domain, "err", err)
		}
		return
	}
	if ierr != nil {
		public.Close()
		p.refused(j.domain, refusedInternal)
		p.log.Warn("internal server unreachable; client closed", "domain", j.domain, "target", j.target, "err", ierr)
		return
	}
	head, _ := p.addressHead(nil, j.a, j.addrs) // checked by incomingConnection
	if err := p.relay.AddConns(public.(*net.TCPConn), internal.(*net.TCPConn), nil, head, j.domain); err != nil {
		p.refused(j.domain, refusedRelay)
		p.log.Warn("relay refused a pair", "domain", j.domain, "err", err)
		return
	}
	p.domains.Get(j.domain).Relayed()
}

// mayDialBack decides whether a dial-back for public proxy may go to endpoint, so that an
// incomingConnection cannot make this proxy connect to an arbitrary host:port: the endpoint
// pinned for it, if any, and nothing else; else the endpoint its reserveConnections gave, or
// one the settings list (DialBackEndpoints).
func (p *Proxy) mayDialBack(proxy, endpoint string) error {
	if pin, pinned := p.live().Endpoints[proxy]; pinned {
		if pin != endpoint {
			return jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "endpoint %s is not the one pinned for %s", endpoint, proxy)
		}
		return nil
	}
	p.learnedMu.Lock()
	learned := slices.Contains(p.learned[proxy], endpoint)
	p.learnedMu.Unlock()
	if learned || p.live().DialBackEndpoints.Allows(endpoint) {
		return nil
	}
	return jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "endpoint %s is neither pinned for %s (private.endpoints), nor the one its reserveConnections gave, nor in private.dial_back_endpoints", endpoint, proxy)
}

// learnEndpoints notes the internal endpoints a public proxy's reserveConnections gave: the one
// its tokens are for and its live instances.
func (p *Proxy) learnEndpoints(proxy, endpoint string, instances []string) {
	eps := append([]string{endpoint}, instances...)
	slices.Sort(eps)
	p.learnedMu.Lock()
	p.learned[proxy] = slices.Compact(eps)
	p.learnedMu.Unlock()
}

// target is where a's clients go.
func (p *Proxy) target(a Announcement) string {
	if a.Target != "" {
		return a.Target
	}
	return p.live().InternalEndpoint
}

package private

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"time"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/matcher"
)

// tokenSize is the size of the one-time token the public proxy expects first on its internal port.
const tokenSize = 32

type incomingParams struct {
	Domain   string `json:"domain"`
	Token    string `json:"token"`
	Endpoint string `json:"endpoint"`
}

type dialJob struct {
	domain, endpoint, target string
	token                    [tokenSize]byte
}

// incomingConnection queues a dial-back for a client waiting at a public proxy. It answers at
// once; the dial happens on the bounded dial pool.
func (p *Proxy) incomingConnection(ctx context.Context, c *epsclient.Call) (any, error) {
	var ps incomingParams
	if err := c.Decode(&ps); err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(ps.Token)
	if err != nil || len(raw) != tokenSize {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "token must be the base64 of %d bytes", tokenSize)
	}
	if err := checkHostPort(ps.Endpoint); err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "endpoint: %v", err)
	}
	domain, err := matcher.Normalize(ps.Domain)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "domain %q: %v", ps.Domain, err)
	}
	p.mu.Lock()
	a, ok := p.anns[key{domain, c.Caller.Name}]
	p.mu.Unlock()
	if !ok || !live(a, time.Now()) {
		p.log.Info("incoming connection refused", "reason", "not_announced", "domain", domain, "from", c.Caller.Name)
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotFound, "no matching connection found: %s is not announced to %s", domain, c.Caller.Name)
	}
	if pin, pinned := p.s.Endpoints[c.Caller.Name]; pinned && pin != ps.Endpoint {
		p.log.Warn("incoming connection refused", "reason", "endpoint_not_pinned", "domain", domain, "from", c.Caller.Name, "endpoint", ps.Endpoint)
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "endpoint %s is not the one pinned for %s", ps.Endpoint, c.Caller.Name)
	}
	job := dialJob{domain: domain, endpoint: ps.Endpoint, target: a.Target}
	if job.target == "" {
		job.target = p.s.InternalEndpoint
	}
	copy(job.token[:], raw)
	select {
	case p.dials <- job:
	default:
		return nil, jsonrpc.Errorf(jsonrpc.CodeOverloaded, "%s has %d dial-backs queued", p.name, cap(p.dials))
	}
	return map[string]string{"message": "ok"}, nil
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
	d := net.Dialer{Timeout: p.s.DialTimeout.D()}
	ctx, cancel := context.WithTimeout(context.Background(), p.s.DialTimeout.D())
	defer cancel()
	var (
		internal net.Conn
		ierr     error
	)
	if p.term == nil {
		internal, ierr = d.DialContext(ctx, "tcp", j.target)
	}
	public, err := d.DialContext(ctx, "tcp", j.endpoint)
	if err != nil {
		if internal != nil {
			internal.Close()
		}
		p.log.Warn("dial-back failed", "domain", j.domain, "endpoint", j.endpoint, "err", err)
		return
	}
	_ = public.SetWriteDeadline(time.Now().Add(p.s.DialTimeout.D()))
	if _, err := public.Write(j.token[:]); err != nil {
		public.Close()
		if internal != nil {
			internal.Close()
		}
		p.log.Warn("dial-back failed", "domain", j.domain, "endpoint", j.endpoint, "err", err)
		return
	}
	_ = public.SetWriteDeadline(time.Time{})
	if p.term != nil {
		// The internal address is reached per request by the HTTP forwarder.
		if internal != nil {
			internal.Close()
		}
		if err := p.term.serve(public, j.target); err != nil {
			public.Close()
		}
		return
	}
	if ierr != nil {
		public.Close()
		p.log.Warn("internal server unreachable; client closed", "domain", j.domain, "target", j.target, "err", ierr)
		return
	}
	if err := p.relay.AddConns(public.(*net.TCPConn), internal.(*net.TCPConn), nil, nil, j.domain); err != nil {
		p.log.Warn("relay refused a pair", "domain", j.domain, "err", err)
	}
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" || port == "" || port == "0" {
		return fmt.Errorf("want host:port, got %q", s)
	}
	return nil
}

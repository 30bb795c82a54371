package private

import (
	"errors"
	"time"

	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// A standby pool's stock of tokens, reserved from its public proxy a batch at a time.

// maxInstances caps the instances of one public proxy this proxy keeps standby connections at.
const maxInstances = 64

// ticket is a token taken from the stock: where to present it, the stock it came from, whether
// its socket's client comes with the address header, and whether it carries clients in frames.
type ticket struct {
	tok               wire.Token
	endpoint          string
	gen               uint64
	addressed, framed bool
}

// token takes a token from the stock, reserving a new batch when the stock is used up.
func (sp *standbyPool) token() (ticket, bool) {
	sp.mu.Lock()
	if len(sp.stock) == 0 || time.Until(sp.until) < standbyTokenMargin {
		sp.stock = nil
		sp.mu.Unlock()
		if !sp.reserve() {
			return ticket{}, false
		}
		sp.mu.Lock()
	}
	defer sp.mu.Unlock()
	if len(sp.stock) == 0 {
		return ticket{}, false
	}
	t := ticket{tok: sp.stock[0], endpoint: sp.endpoint, gen: sp.gen, addressed: sp.addressed, framed: sp.framed}
	sp.stock = sp.stock[1:]
	return t, true
}

// asks is the socket mode the next reservation asks for: the clients' addresses always
// (proxyprotocol.go) and frames unless standby_reuse is off, none while the public proxy refused
// the fields lately.
func (sp *standbyPool) asks() wire.SocketMode {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if time.Now().Before(sp.plainUntil) {
		return wire.SocketMode{}
	}
	return wire.SocketMode{ClientAddress: true, Framed: sp.p.live().standbyReuse()}
}

// reserve asks the public proxy for a batch of tokens. A public proxy of an earlier version
// refuses client_address or framed as an unknown param: it is asked again at once without, and
// not asked for them for standbyRetryOff.
func (sp *standbyPool) reserve() bool {
	var res wire.ReserveResult
	target, _ := sp.placement()
	ask := sp.asks()
	sp.mu.Lock()
	batch := sp.batch
	sp.mu.Unlock()
	err := sp.p.client.Call(sp.ctx, sp.proxy, wire.ReserveConnections, wire.ReserveParams{Count: batch, Endpoint: target, SocketMode: ask}, &res)
	if sp.ctx.Err() != nil {
		return false
	}
	var je *jsonrpc.Error
	if ask != (wire.SocketMode{}) && errors.As(err, &je) && je.Code == jsonrpc.CodeInvalidParams {
		sp.mu.Lock()
		sp.plainUntil = time.Now().Add(standbyRetryOff)
		sp.mu.Unlock()
		sp.p.log.Warn("the public proxy does not send clients' addresses nor frames; clients of names with proxy_protocol v2 will be refused",
			"proxy", sp.proxy, "retry_in", standbyRetryOff.String(), "err", je.Message)
		return sp.reserve()
	}
	if err == nil {
		err = sp.accept(res, ask, batch)
	}
	if err != nil {
		wait, _ := sp.failed(time.Now())
		if target != "" && errors.As(err, &je) && je.Code == jsonrpc.CodeNotFound {
			// The instance is gone: supply whichever answers next (the manager closes a pool
			// that then doubles another).
			sp.mu.Lock()
			sp.target = ""
			sp.mu.Unlock()
			sp.p.log.Info("public proxy instance gone; standby connections go elsewhere", "proxy", sp.proxy, "instance", target, "err", err)
			return false
		}
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

// accept checks a reserveConnections result and stocks its tokens; asked is the socket mode the
// call asked for, and batch how many tokens.
func (sp *standbyPool) accept(res wire.ReserveResult, asked wire.SocketMode, batch int) error {
	if err := proxy.CheckHostPort(res.Endpoint); err != nil {
		return jsonrpc.Errorf(jsonrpc.CodeBadRequest, "reserveConnections returned a bad endpoint: %v", err)
	}
	if pin, pinned := sp.p.live().Endpoints[sp.proxy]; pinned && pin != res.Endpoint {
		return jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "endpoint %s is not the one pinned for %s", res.Endpoint, sp.proxy)
	}
	if len(res.Tokens) > batch {
		return jsonrpc.Errorf(jsonrpc.CodeBadRequest, "reserveConnections returned %d tokens for %d asked", len(res.Tokens), batch)
	}
	if err := checkInstances(res.Instances); err != nil {
		return err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.target != "" && res.Endpoint != sp.target {
		return jsonrpc.Errorf(jsonrpc.CodeBadRequest, "reserveConnections returned tokens for %s, asked for %s", res.Endpoint, sp.target)
	}
	sp.p.learnEndpoints(sp.proxy, res.Endpoint, res.Instances)
	if len(res.Instances) > 0 && sp.target == "" {
		sp.target = res.Endpoint // from now on this pool supplies that instance
	}
	sp.instances, sp.placed = res.Instances, time.Now()
	sp.stock, sp.until, sp.endpoint = res.Tokens, res.ExpiresAt, res.Endpoint
	sp.addressed = asked.ClientAddress && res.ClientAddress
	sp.framed = asked.Framed && res.Framed
	sp.gen++
	if asked.ClientAddress && !res.ClientAddress {
		sp.p.log.Warn("the public proxy did not confirm client_address; clients of names with proxy_protocol v2 will be refused", "proxy", sp.proxy)
	}
	return nil
}

func checkInstances(instances []string) error {
	if len(instances) > maxInstances {
		return jsonrpc.Errorf(jsonrpc.CodeBadRequest, "reserveConnections listed %d instances, more than %d", len(instances), maxInstances)
	}
	for _, ep := range instances {
		if err := proxy.CheckHostPort(ep); err != nil {
			return jsonrpc.Errorf(jsonrpc.CodeBadRequest, "reserveConnections listed a bad instance: %v", err)
		}
	}
	return nil
}

// placementEvery is how often the first pool of a public proxy of several instances asks where
// to dial (reserveConnections with count 0), so that an instance that joins gets a pool of its
// own and its dial-backs are accepted; a dial-back to an endpoint not heard of asks at once
// (placeSoon).
const placementEvery = 10 * time.Second

// placementDue reports whether the pool should ask where to dial now.
func (sp *standbyPool) placementDue() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.first && len(sp.instances) > 0 && time.Since(sp.placed) >= placementEvery
}

// place asks the public proxy where to dial and notes its live instances.
func (sp *standbyPool) place() {
	var res wire.ReserveResult
	err := sp.p.client.Call(sp.ctx, sp.proxy, wire.ReserveConnections, wire.ReserveParams{}, &res)
	sp.mu.Lock()
	sp.placed = time.Now()
	sp.mu.Unlock()
	if err == nil {
		err = proxy.CheckHostPort(res.Endpoint)
	}
	if err == nil {
		err = checkInstances(res.Instances)
	}
	if err != nil {
		if sp.ctx.Err() == nil {
			sp.p.log.Debug("asking where to dial failed", "proxy", sp.proxy, "err", err)
		}
		return
	}
	if pin, pinned := sp.p.live().Endpoints[sp.proxy]; pinned && pin != res.Endpoint {
		return
	}
	sp.p.learnEndpoints(sp.proxy, res.Endpoint, res.Instances)
	sp.mu.Lock()
	sp.instances = res.Instances
	sp.mu.Unlock()
}

// placeAgain asks where to dial for proxy now, through its first pool, at most once a second;
// false if it did not ask. A dial-back named an endpoint not heard of, perhaps an instance that
// joined since the last placement: the caller checks again.
func (p *Proxy) placeAgain(proxy string) bool {
	v, ok := p.placers.Load(proxy)
	if !ok {
		return false
	}
	sp := v.(*standbyPool)
	sp.mu.Lock()
	due := (len(sp.instances) > 0 || sp.placed.IsZero()) && time.Since(sp.placed) >= time.Second
	if due {
		sp.placed = time.Now() // one caller asks; the others are refused as before
	}
	sp.mu.Unlock()
	if due {
		sp.place()
	}
	return due
}

// refused drops the stock a refused token came from: the others likely are not accepted either
// (a restarted public proxy knows none of them). Sockets of the same stock refused later change
// nothing. A stock the public proxy accepted tokens of before was forgotten (the public proxy
// restarted): new tokens are reserved at once, so that clients are back on standby sockets as
// soon as the public proxy is. A stock refused from the start pauses the pool (failed).
func (sp *standbyPool) refused(gen uint64, dialed time.Time) {
	sp.mu.Lock()
	if gen != sp.gen {
		sp.mu.Unlock()
		return
	}
	forgotten := sp.taken == gen
	sp.stock = nil
	sp.gen++
	sp.mu.Unlock()
	if forgotten {
		sp.p.log.Info("standby tokens forgotten by the public proxy (restarted?); reserving new tokens", "proxy", sp.proxy)
		sp.wake()
		return
	}
	wait, _ := sp.failed(dialed)
	sp.p.log.Info("standby connection refused by the public proxy; reserving new tokens", "proxy", sp.proxy, "retry_in", wait.String())
}

package public

import (
	"encoding/json"
	"errors"
	"net/netip"
	"sync"
	"time"

	"epsproxy/engine"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy/wire"
)

// The signaled path: a client with no standby socket of its announcer waits in the engine, and
// incomingConnection tells the announcer's private proxy where to dial back, with the client's
// addresses (source, destination). Private proxies of earlier versions refuse params they do
// not know (-32602); for those the call is repeated at once without the addresses, and their
// operator gets none for bareFor, after which they are tried again (it may have been upgraded).

const (
	// bareFor is how long an operator whose private proxy refused the addresses goes without.
	bareFor = 10 * time.Minute
	// maxBare caps the operators remembered; past it, expired ones are dropped, and if none
	// has expired the newcomer is not remembered (its calls are then each tried twice).
	maxBare = 4096
)

// notify runs on an event loop: it only enqueues the incomingConnection call.
func (p *Proxy) notify(n engine.Notice) error {
	params := wire.IncomingParams{Domain: n.Domain, Token: n.Token, Endpoint: p.s.InternalEndpoint}
	if !p.bare.has(n.Operator, time.Now()) {
		params.Source, params.Destination = n.Addresses.Source, n.Addresses.Destination
	}
	return p.submitIncoming(n.Operator, params)
}

// submitIncoming queues the call; its failure closes the waiting client, unless the private
// proxy refused the addresses, in which case the call is queued again without them.
func (p *Proxy) submitIncoming(operator string, params wire.IncomingParams) error {
	return p.pool.Submit(epsclient.Job{
		Operator: operator,
		Method:   wire.IncomingConnection,
		Params:   params,
		Done: func(_ json.RawMessage, err error) {
			if err == nil {
				return
			}
			var je *jsonrpc.Error
			if params.Addresses() != (wire.Addresses{}) && errors.As(err, &je) && je.Code == jsonrpc.CodeInvalidParams {
				if p.bare.add(operator, time.Now()) {
					p.log.Info("a private proxy refused the client's addresses in incomingConnection; sending it none for a while",
						"operator", operator, "for", bareFor.String(), "err", je.Message)
				}
				params.Source, params.Destination = netip.AddrPort{}, netip.AddrPort{}
				if err = p.submitIncoming(operator, params); err == nil {
					return
				}
			}
			p.eng.Cancel(params.Token, err.Error())
		},
	})
}

// bareOperators are the operators whose incomingConnection goes without the client's
// addresses, each until a time. The zero value is empty and ready.
type bareOperators struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// has reports whether operator goes without addresses now.
func (b *bareOperators) has(operator string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.until[operator]
	return ok && now.Before(until)
}

// add makes operator go without addresses for bareFor; true if it did not already.
func (b *bareOperators) add(operator string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until, ok := b.until[operator]; ok && now.Before(until) {
		return false
	}
	if b.until == nil {
		b.until = map[string]time.Time{}
	}
	if len(b.until) >= maxBare {
		for op, until := range b.until {
			if !now.Before(until) {
				delete(b.until, op)
			}
		}
		if len(b.until) >= maxBare {
			return true
		}
	}
	b.until[operator] = now.Add(bareFor)
	return true
}

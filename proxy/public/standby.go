package public

import (
	"context"
	"errors"

	"epsproxy/engine"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// reserveConnections hands the caller one-time tokens for standby connections: sockets it dials
// ahead of time, which are relayed to at once when a client for one of its names arrives (see
// engine/standby.go). Only an operator the directory lets announce names here may reserve.
func (p *Proxy) reserveConnections(ctx context.Context, c *epsclient.Call, ps wire.ReserveParams) (any, error) {
	if ps.Count < 1 || ps.Count > wire.MaxReserve {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "count must be 1 to %d", wire.MaxReserve)
	}
	if _, err := proxy.Grant(c, p.name, "reserve connections at"); err != nil {
		return nil, err
	}
	toks, until, err := p.eng.Reserve(c.Caller.Name, ps.Count)
	if errors.Is(err, engine.ErrStandbyOff) {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotFound, "%s has standby connections disabled", p.name)
	}
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeOverloaded, "%v", err)
	}
	out := wire.ReserveResult{Tokens: toks, Endpoint: p.s.InternalEndpoint, ExpiresAt: until.UTC()}
	p.log.Debug("standby tokens reserved", "caller", c.Caller.Name, "count", len(toks))
	return out, nil
}

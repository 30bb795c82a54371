package public

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"epsproxy/engine"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy"
	"epsproxy/proxy/cluster"
	"epsproxy/proxy/wire"
)

// reserveConnections hands the caller one-time tokens for standby connections: sockets it dials
// ahead of time, which are relayed to at once when a client for one of its names arrives (see
// engine/standby.go). Only an operator the directory lets announce names here may reserve. The
// sockets carry clients as the params' socket mode asks (wire.SocketMode: the address header,
// frames), which the result confirms.
func (p *Proxy) reserveConnections(ctx context.Context, c *epsclient.Call, ps wire.ReserveParams) (any, error) {
	if ps.Count < 0 || ps.Count > wire.MaxReserve {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "count must be 0 (where to dial) to %d", wire.MaxReserve)
	}
	if _, err := proxy.Grant(c, p.name, "reserve connections at"); err != nil {
		return nil, err
	}
	out := wire.ReserveResult{Tokens: []wire.Token{}}
	if p.cluster != nil {
		out.Instances = p.cluster.ReadInstances(ctx)
	}
	target := cmp.Or(ps.Endpoint, p.s.InternalEndpoint)
	var err error
	switch {
	case ps.Count == 0:
		target, out.ExpiresAt = p.s.InternalEndpoint, time.Now()
	case target == p.s.InternalEndpoint:
		out.Tokens, out.ExpiresAt, err = p.eng.Reserve(c.Caller.Name, ps.Count, ps.SocketMode)
	default:
		out.Tokens, out.ExpiresAt, err = p.reserveFor(ctx, target, c.Caller.Name, ps.Count, out.Instances, ps.SocketMode)
	}
	if errors.Is(err, engine.ErrStandbyOff) {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotFound, "%s has standby connections disabled", p.name)
	}
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return nil, je
	}
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeOverloaded, "%v", err)
	}
	out.Endpoint, out.ExpiresAt, out.SocketMode = target, out.ExpiresAt.UTC(), ps.SocketMode
	p.log.Debug("standby tokens reserved", "caller", c.Caller.Name, "count", len(out.Tokens), "instance", target)
	return out, nil
}

// reserveFor mints tokens for another live instance of this public proxy and hands it their
// hashes through the shared store, with mode; the caller dials that instance with them.
func (p *Proxy) reserveFor(ctx context.Context, target, operator string, n int, live []string, mode wire.SocketMode) ([]wire.Token, time.Time, error) {
	if p.cluster == nil || !slices.Contains(live, target) {
		return nil, time.Time{}, jsonrpc.Errorf(jsonrpc.CodeNotFound, "%s has no live instance with the internal endpoint %s", p.name, target)
	}
	toks, until, err := p.eng.Mint(n)
	if err != nil {
		return nil, time.Time{}, err
	}
	hashes := make([][32]byte, len(toks))
	for i, t := range toks {
		hashes[i] = engine.HashToken(t)
	}
	switch err := p.cluster.SendTokens(ctx, target, operator, hashes, until, mode); {
	case errors.Is(err, cluster.ErrNoInstance):
		return nil, time.Time{}, jsonrpc.Errorf(jsonrpc.CodeNotFound, "%v", err)
	case err != nil:
		return nil, time.Time{}, storeError(err)
	}
	return toks, until, nil
}

package public

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"epsproxy/engine"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
)

// maxReserve caps the tokens one reserveConnections call makes.
const maxReserve = 1024

type (
	reserveParams struct {
		Count int `json:"count"`
	}
	// reserveResult tells the caller where to dial and with which tokens. Tokens are the base64
	// of 32 bytes, like incomingConnection's; each is good for one standby connection until
	// ExpiresAt.
	reserveResult struct {
		Tokens    []string  `json:"tokens"`
		Endpoint  string    `json:"endpoint"`
		ExpiresAt time.Time `json:"expires_at"`
	}
)

// reserveConnections hands the caller one-time tokens for standby connections: sockets it dials
// ahead of time, which are relayed to at once when a client for one of its names arrives (see
// engine/standby.go). Only an operator the directory lets announce names here may reserve.
func (p *Proxy) reserveConnections(ctx context.Context, c *epsclient.Call) (any, error) {
	var ps reserveParams
	if err := c.Decode(&ps); err != nil {
		return nil, err
	}
	if ps.Count < 1 || ps.Count > maxReserve {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "count must be 1 to %d", maxReserve)
	}
	var g grant
	ok, err := c.Caller.Entry.SettingsFor("proxy", p.name, &g)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "the directory's settings for %s are invalid: %v", c.Caller.Name, err)
	}
	if !ok || len(g.AllowedDomains) == 0 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "%s may not reserve connections at %s: the directory grants it no allowed_domains", c.Caller.Name, p.name)
	}
	toks, until, err := p.eng.Reserve(c.Caller.Name, ps.Count)
	if errors.Is(err, engine.ErrStandbyOff) {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotFound, "%s has standby connections disabled", p.name)
	}
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeOverloaded, "%v", err)
	}
	out := reserveResult{Tokens: make([]string, len(toks)), Endpoint: p.s.InternalEndpoint, ExpiresAt: until.UTC()}
	for i := range toks {
		out.Tokens[i] = base64.StdEncoding.EncodeToString(toks[i][:])
	}
	p.log.Debug("standby tokens reserved", "caller", c.Caller.Name, "count", len(toks))
	return out, nil
}

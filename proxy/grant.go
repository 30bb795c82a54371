package proxy

import (
	"context"
	"slices"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy/wire"
)

// DefaultGrantCheckEvery is how often a proxy asks its node whether the grants behind the names
// it serves still hold.
const DefaultGrantCheckEvery = 30 * time.Second

// Grant returns what the directory grants the caller of c for the "proxy" service of self (this
// proxy's operator name): the names it may announce here. A caller granted no names gets a 403
// that says it may not do what (for example "announce names to"); a directory entry whose
// settings do not decode is an internal error naming the caller.
func Grant(c *epsclient.Call, self, what string) (wire.Grant, error) {
	var g wire.Grant
	ok, err := c.Caller.Entry.SettingsFor(wire.Service, self, &g)
	if err != nil {
		return g, jsonrpc.Errorf(jsonrpc.CodeInternal, "the directory's settings for %s are invalid: %v", c.Caller.Name, err)
	}
	if !ok || len(g.AllowedDomains) == 0 {
		return g, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "%s may not %s %s: the directory grants it no allowed_domains", c.Caller.Name, what, self)
	}
	return g, nil
}

// CurrentGrants asks this proxy's own node (self) for the directory's current entries of
// operators and returns what each may announce here: no entry, or no grant, is an empty list.
// A call that fails returns the error and no grants, so that a node that cannot be asked never
// looks like a revocation.
func CurrentGrants(ctx context.Context, c *epsclient.Client, self string, operators []string) (map[string][]string, error) {
	out := make(map[string][]string, len(operators))
	for batch := range slices.Chunk(operators, directory.MaxLookup) {
		var res directory.LookupResult
		if err := c.Call(ctx, self, directory.LookupMethod, directory.LookupParams{Operators: batch}, &res); err != nil {
			return nil, err
		}
		for _, op := range batch {
			var g wire.Grant
			if e := res[op]; e != nil {
				if ok, err := e.SettingsFor(wire.Service, self, &g); err != nil || !ok {
					g = wire.Grant{}
				}
			}
			out[op] = g.AllowedDomains
		}
	}
	return out, nil
}

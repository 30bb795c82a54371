package proxy

import (
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy/wire"
)

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

package private

import (
	"context"
	"time"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/matcher"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// announceConnection lets an operator the directory authorizes (allowed_domains granted for
// this proxy's "proxy" service) add a name at run time.
func (p *Proxy) announceConnection(ctx context.Context, c *epsclient.Call, ps wire.AnnounceConnectionParams) (any, error) {
	if ps.Proxy == "" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "proxy is missing: the public proxy to announce the name to")
	}
	if ps.Proxy == p.name {
		return nil, jsonrpc.Errorf(jsonrpc.CodeBadRequest, "proxy names this private proxy itself; name the public proxy")
	}
	g, err := proxy.Grant(c, p.name, "announce names through")
	if err != nil {
		return nil, err
	}
	domain, err := matcher.Normalize(ps.Domain)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "domain %q: %v", ps.Domain, err)
	}
	if !matcher.Allowed(g.AllowedDomains, domain) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeNotAllowed, Message: "not allowed to forward " + domain, Data: g}
	}
	if ps.ExpiresAt != nil && ps.ExpiresAt.After(time.Now().Add(matcher.MaxExpiry)) {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "timed announcements must expire in 7 days or less")
	}
	if ps.Target != "" {
		if err := proxy.CheckHostPort(ps.Target); err != nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "target: %v", err)
		}
	}
	a := Announcement{Domain: domain, Proxy: ps.Proxy, Target: ps.Target, ExpiresAt: ps.ExpiresAt}
	if err := p.anns.update(func(m map[key]Announcement) { m[key{domain, ps.Proxy}] = a }); err != nil {
		p.log.Error("saving announcements failed", "file", p.anns.path, "err", err)
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "the announcement could not be saved")
	}
	p.log.Info("announcement added", "by", c.Caller.Name, "domain", domain, "proxy", ps.Proxy)
	select {
	case p.changed <- struct{}{}:
	default:
	}
	return "ok", nil
}

// getAnnouncements lists this proxy's live announcements.
func (p *Proxy) getAnnouncements(ctx context.Context, c *epsclient.Call, _ struct{}) (any, error) {
	live := p.anns.liveList(time.Now())
	out := make([]wire.Served, len(live))
	for i, a := range live {
		out[i] = wire.Served(a)
	}
	return out, nil
}

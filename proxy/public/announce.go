package public

import (
	"context"
	"time"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/matcher"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// announceConnections files the caller's names. The result is a list with one entry per name:
// null when accepted, else an error object (403 not allowed, 409 taken, 400 invalid or too far
// in the future, 507 table full), as the original did.
func (p *Proxy) announceConnections(ctx context.Context, c *epsclient.Call, ps wire.AnnounceParams) (any, error) {
	if len(ps.Connections) > wire.MaxAnnounceBatch {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "at most %d connections per call", wire.MaxAnnounceBatch)
	}
	g, err := proxy.Grant(c, p.name, "announce names to")
	if err != nil {
		return nil, err
	}
	items := make([]matcher.Item, len(ps.Connections))
	for i, a := range ps.Connections {
		items[i].Domain = a.Domain
		if a.ExpiresAt != nil {
			items[i].ExpiresAt = *a.ExpiresAt
		}
	}
	errs, err := p.announce(ctx, c.Caller.Name, g.AllowedDomains, items, time.Now())
	if err != nil {
		p.log.Warn("announcements refused", "caller", c.Caller.Name, "count", len(items), "err", err)
		return nil, err
	}
	out := make([]*jsonrpc.Error, len(errs))
	accepted := 0
	for i, err := range errs {
		if err != nil {
			out[i] = jsonrpc.AsError(err)
			continue
		}
		accepted++
	}
	p.log.Info("announcements", "caller", c.Caller.Name, "accepted", accepted, "refused", len(errs)-accepted)
	for i, e := range out {
		if e != nil {
			p.log.Info("announcement refused", "caller", c.Caller.Name, "domain", items[i].Domain, "code", e.Code, "err", e.Message)
		}
	}
	return out, nil
}

// getAnnouncements lists the caller's live announcements. Only the caller's own: one operator
// has no business learning which names another serves.
func (p *Proxy) getAnnouncements(ctx context.Context, c *epsclient.Call, _ struct{}) (any, error) {
	out := []wire.Listed{}
	for _, a := range p.table.List(time.Now()) {
		if a.Operator != c.Caller.Name {
			continue
		}
		l := wire.Listed{Domain: a.Domain, Operator: a.Operator}
		if !a.ExpiresAt.IsZero() {
			t := a.ExpiresAt
			l.ExpiresAt = &t
		}
		out = append(out, l)
	}
	return out, nil
}

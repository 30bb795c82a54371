package public

import (
	"context"
	"time"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/matcher"
)

// maxBatch caps the names in one announceConnections call.
const maxBatch = 10000

// Wire forms of the EPS methods, compatible with the original EPS proxy.
type (
	announcement struct {
		Domain    string     `json:"domain"`
		ExpiresAt *time.Time `json:"expires_at,omitempty"`
	}
	announceParams struct {
		Connections []announcement `json:"connections"`
	}
	listed struct {
		Domain    string     `json:"domain"`
		Operator  string     `json:"operator"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	// grant is what the directory grants a caller for this proxy's "proxy" service.
	grant struct {
		AllowedDomains []string `json:"allowed_domains"`
	}
)

// announceConnections files the caller's names. The result is a list with one entry per name:
// null when accepted, else an error object (403 not allowed, 409 taken, 400 invalid or too far
// in the future, 507 table full), as the original did.
func (p *Proxy) announceConnections(ctx context.Context, c *epsclient.Call) (any, error) {
	var ps announceParams
	if err := c.Decode(&ps); err != nil {
		return nil, err
	}
	if len(ps.Connections) > maxBatch {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "at most %d connections per call", maxBatch)
	}
	var g grant
	ok, err := c.Caller.Entry.SettingsFor("proxy", p.name, &g)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "the directory's settings for %s are invalid: %v", c.Caller.Name, err)
	}
	if !ok || len(g.AllowedDomains) == 0 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "%s may not announce names to %s: the directory grants it no allowed_domains", c.Caller.Name, p.name)
	}
	items := make([]matcher.Item, len(ps.Connections))
	for i, a := range ps.Connections {
		items[i].Domain = a.Domain
		if a.ExpiresAt != nil {
			items[i].ExpiresAt = *a.ExpiresAt
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := p.table.Announce(c.Caller.Name, g.AllowedDomains, items, time.Now())
	out := make([]*jsonrpc.Error, len(errs))
	accepted := 0
	for i, err := range errs {
		if err != nil {
			out[i] = jsonrpc.AsError(err)
			continue
		}
		accepted++
	}
	if accepted > 0 {
		if err := p.table.Save(p.store); err != nil {
			// The table holds the names, so routing works; a restart would lose them until the
			// private side re-announces. Say so loudly but do not fail the call.
			p.log.Error("saving announcements failed", "file", p.store, "err", err)
		}
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
func (p *Proxy) getAnnouncements(ctx context.Context, c *epsclient.Call) (any, error) {
	var ps struct{}
	if err := c.Decode(&ps); err != nil {
		return nil, err
	}
	out := []listed{}
	for _, a := range p.table.List(time.Now()) {
		if a.Operator != c.Caller.Name {
			continue
		}
		l := listed{Domain: a.Domain, Operator: a.Operator}
		if !a.ExpiresAt.IsZero() {
			t := a.ExpiresAt
			l.ExpiresAt = &t
		}
		out = append(out, l)
	}
	return out, nil
}

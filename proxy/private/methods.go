package private

import (
	"context"
	"errors"
	"strings"
	"time"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/matcher"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// announceConnection lets an operator the directory authorizes (allowed_domains granted for
// this proxy's "proxy" service) add, change or withdraw a name at run time. A name belongs to
// whoever holds it: the settings file, or the operator that added it; nobody else may change it,
// send its clients elsewhere, or withdraw it (409). A target must be one the settings allow
// (RuntimeTargets). The public proxy must take the name before it is stored: a public proxy the
// directory does not know, or does not let this proxy announce to, is refused (403) and nothing
// is kept.
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
	now := time.Now()
	if ps.ExpiresAt != nil && ps.ExpiresAt.After(now.Add(matcher.MaxExpiry)) {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "timed announcements must expire in 7 days or less")
	}
	if ps.Target != "" {
		if err := proxy.CheckHostPort(ps.Target); err != nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "target: %v", err)
		}
		if !p.live().RuntimeTargets.Allows(ps.Target) {
			return nil, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "target %s is not one %s lets operators name (private.runtime_targets); leave target out to use its internal endpoint", ps.Target, p.name)
		}
	}
	a := Announcement{Domain: domain, Proxy: ps.Proxy, Target: ps.Target, ExpiresAt: ps.ExpiresAt, Owner: c.Caller.Name}
	withdraw := ps.ExpiresAt != nil && !ps.ExpiresAt.After(now)
	// Checked here to refuse at once, and again under the writers' lock below, where it counts.
	if err := p.mayHold(p.anns.snapshot(), a, withdraw, now); err != nil {
		return nil, err
	}
	if err := p.confirm(ctx, a); err != nil {
		return nil, err
	}
	err = p.anns.update(func(m map[key]Announcement) error {
		if err := p.mayHold(m, a, withdraw, now); err != nil {
			return err
		}
		if withdraw {
			delete(m, key{domain, ps.Proxy})
		} else {
			m[key{domain, ps.Proxy}] = a
		}
		return nil
	})
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return nil, je
	}
	if err != nil {
		p.log.Error("saving announcements failed", "file", p.anns.path, "err", err)
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "the announcement could not be saved")
	}
	p.log.Info("announcement changed", "by", c.Caller.Name, "domain", domain, "proxy", ps.Proxy, "withdrawn", withdraw)
	select {
	case p.changed <- struct{}{}:
	default:
	}
	return "ok", nil
}

// mayHold checks that a's owner may add (or withdraw) a, given the set m: no one else holds the
// name, to any public proxy, nor a wildcard that serves it; withdrawing needs a name of its own;
// and the owner stays within MaxNamesPerOperator.
func (p *Proxy) mayHold(m map[key]Announcement, a Announcement, withdraw bool, now time.Time) error {
	if h, ok := holder(m, a, now); ok {
		who := "the private proxy's settings"
		if h.Owner != "" {
			who = h.Owner
		}
		return jsonrpc.Errorf(jsonrpc.CodeConflict, "%s is held by %s (%s to %s): only its owner may change it", a.Domain, who, h.Domain, h.Proxy)
	}
	if withdraw {
		if _, ok := m[key{a.Domain, a.Proxy}]; !ok {
			return jsonrpc.Errorf(jsonrpc.CodeNotFound, "%s is not announced to %s", a.Domain, a.Proxy)
		}
		return nil
	}
	held := 0
	for k, b := range m {
		if b.Owner == a.Owner && live(b, now) && k != (key{a.Domain, a.Proxy}) {
			held++
		}
	}
	if held >= p.live().MaxNamesPerOperator {
		return jsonrpc.Errorf(jsonrpc.CodeFull, "%s already has %d names here, the most one operator may add (private.max_names_per_operator)", a.Owner, held)
	}
	return nil
}

// holder finds a live announcement in m, held by someone other than a's owner, that owns a's
// name: the same name to any public proxy, or the wildcard that serves it by matcher's rule.
func holder(m map[key]Announcement, a Announcement, now time.Time) (Announcement, bool) {
	heldBy := func(name string) (Announcement, bool) {
		for _, b := range m {
			if b.Domain == name && b.Owner != a.Owner && live(b, now) {
				return b, true
			}
		}
		return Announcement{}, false
	}
	if strings.HasPrefix(a.Domain, "*.") {
		return heldBy(a.Domain) // a pattern: Match looks up host names only
	}
	return matcher.Match(a.Domain, heldBy)
}

// confirm announces a to its public proxy (or withdraws it there) before it is stored, so that a
// made-up or forbidden public proxy, or a name the public proxy refuses, is never kept.
func (p *Proxy) confirm(ctx context.Context, a Announcement) error {
	var results []*jsonrpc.Error
	err := p.client.Call(ctx, a.Proxy, wire.AnnounceConnections, wire.AnnounceParams{Connections: []wire.Announcement{{Domain: a.Domain, ExpiresAt: a.ExpiresAt}}}, &results)
	var je *jsonrpc.Error
	switch {
	case errors.As(err, &je) && (je.Code == jsonrpc.CodeNotFound || je.Code == jsonrpc.CodeNotAllowed || je.Code == jsonrpc.CodeMethodNotFound):
		return jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "%s is not a public proxy %s may announce to: %s", a.Proxy, p.name, je.Message)
	case je != nil:
		return jsonrpc.Errorf(jsonrpc.CodeUnreachable, "%s could not confirm the name with %s, nothing was stored: %s", p.name, a.Proxy, je.Message)
	case err != nil:
		return jsonrpc.Errorf(jsonrpc.CodeUnreachable, "%s could not confirm the name with %s, nothing was stored: %v", p.name, a.Proxy, err)
	case len(results) != 1:
		return jsonrpc.Errorf(jsonrpc.CodeUnreachable, "%s answered announceConnections with %d results for one name", a.Proxy, len(results))
	case results[0] != nil:
		return results[0]
	}
	return nil
}

// getAnnouncements lists the live names that concern the caller: a public proxy sees the names
// announced to it, an operator the names it added (with their targets); this proxy's own
// operator (its node) sees all. Nobody else learns another operator's internal targets.
func (p *Proxy) getAnnouncements(ctx context.Context, c *epsclient.Call, _ struct{}) (any, error) {
	out := []wire.Served{}
	for _, a := range p.anns.liveList(time.Now()) {
		switch {
		case c.Caller.Name == p.name || (a.Owner != "" && a.Owner == c.Caller.Name):
			out = append(out, wire.Served{Domain: a.Domain, Proxy: a.Proxy, Target: a.Target, ExpiresAt: a.ExpiresAt, Owner: a.Owner})
		case a.Proxy == c.Caller.Name:
			out = append(out, wire.Served{Domain: a.Domain, Proxy: a.Proxy, ExpiresAt: a.ExpiresAt})
		}
	}
	return out, nil
}

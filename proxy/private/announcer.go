package private

import (
	"context"
	"sort"
	"time"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/matcher"
)

const (
	firstBackoff = time.Second
	maxBackoff   = 30 * time.Second
)

// wire forms, compatible with the original EPS proxy
type (
	wireAnnouncement struct {
		Domain    string     `json:"domain"`
		ExpiresAt *time.Time `json:"expires_at,omitempty"`
	}
	announceParams struct {
		Connections []wireAnnouncement `json:"connections"`
	}
	// announceConnectionParams is the run-time method an authorized operator calls.
	announceConnectionParams struct {
		Domain    string     `json:"domain"`
		Proxy     string     `json:"proxy"`
		Target    string     `json:"target,omitempty"`
		ExpiresAt *time.Time `json:"expires_at,omitempty"`
	}
	grant struct {
		AllowedDomains []string `json:"allowed_domains"`
	}
)

// announcer sends the live announcements at start, after every change, and every
// ReannounceEvery; while a public proxy refuses or cannot be reached it retries with backoff.
func (p *Proxy) announcer() {
	defer p.wg.Done()
	backoff := firstBackoff
	for {
		wait := p.s.ReannounceEvery.D()
		if !p.announceAll() {
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		} else {
			backoff = firstBackoff
		}
		t := time.NewTimer(wait)
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-p.changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// announceAll sends each public proxy the live names announced to it; false if any call failed.
func (p *Proxy) announceAll() bool {
	now := time.Now()
	byProxy := map[string][]wireAnnouncement{}
	p.mu.Lock()
	for _, a := range p.anns {
		if live(a, now) {
			byProxy[a.Proxy] = append(byProxy[a.Proxy], wireAnnouncement{Domain: a.Domain, ExpiresAt: a.ExpiresAt})
		}
	}
	p.mu.Unlock()
	ok := true
	for proxy, list := range byProxy {
		sort.Slice(list, func(i, j int) bool { return list[i].Domain < list[j].Domain })
		var results []*jsonrpc.Error
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-p.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := p.client.Call(ctx, proxy, "announceConnections", announceParams{Connections: list}, &results)
		cancel()
		if err != nil {
			p.log.Warn("announcing failed, will retry", "proxy", proxy, "names", len(list), "err", err)
			ok = false
			continue
		}
		refused := 0
		for i, e := range results {
			if e != nil && i < len(list) {
				refused++
				p.log.Warn("announcement refused", "proxy", proxy, "domain", list[i].Domain, "code", e.Code, "err", e.Message)
			}
		}
		p.log.Info("announced", "proxy", proxy, "accepted", len(list)-refused, "refused", refused)
	}
	return ok
}

// announceConnection lets an operator the directory authorizes (allowed_domains granted for
// this proxy's "proxy" service) add a name at run time.
func (p *Proxy) announceConnection(ctx context.Context, c *epsclient.Call) (any, error) {
	var ps announceConnectionParams
	if err := c.Decode(&ps); err != nil {
		return nil, err
	}
	if ps.Proxy == "" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "proxy is missing: the public proxy to announce the name to")
	}
	if ps.Proxy == p.name {
		return nil, jsonrpc.Errorf(jsonrpc.CodeBadRequest, "proxy names this private proxy itself; name the public proxy")
	}
	var g grant
	ok, err := c.Caller.Entry.SettingsFor("proxy", p.name, &g)
	if err != nil || !ok || len(g.AllowedDomains) == 0 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "%s may not announce names through %s: the directory grants it no allowed_domains", c.Caller.Name, p.name)
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
		if err := checkHostPort(ps.Target); err != nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "target: %v", err)
		}
	}
	a := Announcement{Domain: domain, Proxy: ps.Proxy, Target: ps.Target, ExpiresAt: ps.ExpiresAt}
	p.mu.Lock()
	p.anns[key{domain, ps.Proxy}] = a
	err = saveStore(p.store, p.anns)
	p.mu.Unlock()
	if err != nil {
		p.log.Error("saving announcements failed", "file", p.store, "err", err)
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
func (p *Proxy) getAnnouncements(ctx context.Context, c *epsclient.Call) (any, error) {
	now := time.Now()
	p.mu.Lock()
	out := make([]Announcement, 0, len(p.anns))
	for _, a := range p.anns {
		if live(a, now) {
			out = append(out, a)
		}
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out, nil
}

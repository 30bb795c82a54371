package private

import (
	"context"
	"maps"
	"slices"
	"time"

	"epsproxy/matcher"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// watchGrants withdraws, at start and every GrantCheckEvery, the run-time names whose owner the
// directory no longer grants them, here and at the public proxies they were announced to.
func (p *Proxy) watchGrants() {
	defer p.wg.Done()
	proxy.Every(p.stop, p.s.GrantCheckEvery.D(), p.checkGrants)
}

// checkGrants asks the node for the owners' current grants and withdraws what they no longer
// cover. If the node cannot be asked, nothing changes.
func (p *Proxy) checkGrants(ctx context.Context) {
	owners := map[string]bool{}
	for _, a := range p.anns.snapshot() {
		if a.Owner != "" {
			owners[a.Owner] = true
		}
	}
	if len(owners) == 0 {
		return
	}
	grants, err := proxy.CurrentGrants(ctx, p.client, p.name, slices.Sorted(maps.Keys(owners)))
	if err != nil {
		p.log.Debug("grants not checked: the node did not answer", "err", err)
		return
	}
	revoked := func(a Announcement) bool { return a.Owner != "" && !matcher.Allowed(grants[a.Owner], a.Domain) }
	found := false
	for _, a := range p.anns.snapshot() {
		if found = revoked(a); found {
			break
		}
	}
	if !found {
		return // nothing to withdraw: no save
	}
	var gone []Announcement
	err = p.anns.update(func(m map[key]Announcement) error {
		for k, a := range m {
			if revoked(a) {
				gone = append(gone, a)
				delete(m, k)
			}
		}
		return nil
	})
	if err != nil {
		p.log.Error("saving announcements failed", "file", p.anns.path, "err", err)
	}
	if len(gone) == 0 {
		return
	}
	past := time.Now().Add(-time.Second)
	byProxy := map[string][]wire.Announcement{}
	for _, a := range gone {
		p.log.Warn("announcement withdrawn: the directory no longer grants it", "owner", a.Owner, "domain", a.Domain, "proxy", a.Proxy)
		byProxy[a.Proxy] = append(byProxy[a.Proxy], wire.Announcement{Domain: a.Domain, ExpiresAt: &past})
	}
	for proxy, list := range byProxy {
		for _, batch := range batches(list) {
			p.announceTo(proxy, batch)
		}
	}
}

package private

import (
	"context"
	"time"

	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy/wire"
)

// Retry backoff of the announcer and of the standby pools.
const (
	firstBackoff = time.Second
	maxBackoff   = 30 * time.Second
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
	byProxy := map[string][]wire.Announcement{}
	for _, a := range p.anns.liveList(time.Now()) {
		byProxy[a.Proxy] = append(byProxy[a.Proxy], wire.Announcement{Domain: a.Domain, ExpiresAt: a.ExpiresAt})
	}
	ok := true
	for proxy, list := range byProxy {
		var results []*jsonrpc.Error
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-p.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := p.client.Call(ctx, proxy, wire.AnnounceConnections, wire.AnnounceParams{Connections: list}, &results)
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

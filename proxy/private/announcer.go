package private

import (
	"time"

	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy"
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
		wait := time.Duration(p.reannounce.Load())
		withdrawn := p.sendWithdrawals()
		if !p.announceAll() || !withdrawn {
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
	for proxy, all := range byProxy {
		for _, list := range batches(all) {
			ok = p.announceTo(proxy, list) && ok
		}
	}
	return ok
}

// maxBatchBytes keeps one announceConnections call well under the JSON-RPC body cap
// (jsonrpc.MaxBody), whatever the names' lengths.
const maxBatchBytes = jsonrpc.MaxBody / 2

// batches splits a list of names into calls of at most wire.MaxAnnounceBatch names and
// maxBatchBytes of JSON each, so that no call is refused whole for its size.
func batches(list []wire.Announcement) [][]wire.Announcement {
	var out [][]wire.Announcement
	start, size := 0, 0
	for i, a := range list {
		n := len(a.Domain) + 64 // quotes, keys, punctuation and an RFC 3339 expiry
		if i > start && (i-start == wire.MaxAnnounceBatch || size+n > maxBatchBytes) {
			out = append(out, list[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(list) {
		out = append(out, list[start:])
	}
	return out
}

// announceTo sends one batch of names (at most wire.MaxAnnounceBatch) to a public proxy and
// logs what it refused; false if the call failed.
func (p *Proxy) announceTo(public string, list []wire.Announcement) bool {
	var results []*jsonrpc.Error
	ctx, cancel := proxy.StopContext(p.stop)
	err := p.client.Call(ctx, public, wire.AnnounceConnections, wire.AnnounceParams{Connections: list}, &results)
	cancel()
	if err != nil {
		p.log.Warn("announcing failed, will retry", "proxy", public, "names", len(list), "err", err)
		return false
	}
	refused := 0
	for i, e := range results {
		if e != nil && i < len(list) {
			refused++
			p.log.Warn("announcement refused", "proxy", public, "domain", list[i].Domain, "code", e.Code, "err", e.Message)
		}
	}
	p.log.Info("announced", "proxy", public, "accepted", len(list)-refused, "refused", refused)
	return true
}

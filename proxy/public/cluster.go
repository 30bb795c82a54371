package public

import (
	"context"
	"errors"
	"time"

	"epsproxy/internal/jsonrpc"
	"epsproxy/matcher"
	"epsproxy/proxy/cluster"
	"epsproxy/proxy/wire"
)

// With a `redis` block the proxy is one instance of several: its table mirrors the shared one
// (package proxy/cluster), announcements are decided in Redis, and the local file is only a
// copy that lets a restarted instance serve what it knew while Redis is unreachable.

// cacheSaveDelay gathers the mirror's changes into one save of the local copy.
const cacheSaveDelay = time.Second

// newCluster connects the proxy to the shared store, if one is configured.
func (p *Proxy) newCluster() error {
	if !p.s.Redis.Enabled() {
		return nil
	}
	st, err := cluster.New(p.s.Redis, p.name, p.s.InternalEndpoint, p.table, matcher.Options{}, cluster.Hooks{
		Tokens:  p.acceptTokens,
		Changed: p.saveSoon,
	}, p.log)
	if err != nil {
		return err
	}
	p.cluster = st
	p.saveTimer = time.AfterFunc(time.Hour, p.saveCache)
	p.saveTimer.Stop()
	return nil
}

// acceptTokens files standby tokens another instance minted for this one.
func (p *Proxy) acceptTokens(operator string, hashes [][32]byte, until time.Time, mode wire.SocketMode) {
	hs := make([]wire.TokenHash, len(hashes))
	for i, h := range hashes {
		hs[i] = wire.TokenHash(h)
	}
	if err := p.eng.AcceptTokens(operator, hs, until, mode); err != nil {
		p.log.Info("standby tokens from another instance not filed", "operator", operator, "count", len(hs), "err", err)
	}
}

// saveSoon schedules a save of the local copy, once per cacheSaveDelay however many changes.
func (p *Proxy) saveSoon() {
	if p.saving.CompareAndSwap(false, true) {
		p.saveTimer.Reset(cacheSaveDelay)
	}
}

func (p *Proxy) saveCache() {
	p.saving.Store(false)
	if err := p.table.Save(p.store); err != nil {
		p.log.Error("saving the local copy of the announcements failed", "file", p.store, "err", err)
	}
}

// storeError is the call-level error for a store that could not decide.
func storeError(err error) error {
	if errors.Is(err, cluster.ErrUnavailable) {
		return jsonrpc.Errorf(jsonrpc.CodeOverloaded, "%v", err)
	}
	return jsonrpc.Errorf(jsonrpc.CodeInternal, "%v", err)
}

// announce decides an announcement batch: in the shared store, or in the table and its file.
func (p *Proxy) announce(ctx context.Context, operator string, allowed []string, items []matcher.Item, now time.Time) ([]error, error) {
	if p.cluster != nil {
		errs, err := p.cluster.Announce(ctx, operator, allowed, items, now)
		if err != nil {
			return nil, storeError(err)
		}
		return errs, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := p.table.Announce(operator, allowed, items, now)
	for _, err := range errs {
		if err == nil {
			p.save()
			break
		}
	}
	return errs, nil
}

// withdraw removes operator's announcement of domain, wherever announcements are decided.
func (p *Proxy) withdraw(ctx context.Context, operator, domain string) error {
	if p.cluster != nil {
		return p.cluster.Withdraw(ctx, operator, domain)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.table.Withdraw(operator, domain); err != nil {
		return err
	}
	p.save()
	return nil
}

// purgeExpired drops the expired announcements, wherever announcements are decided.
func (p *Proxy) purgeExpired(ctx context.Context, now time.Time) {
	if p.cluster != nil {
		if _, err := p.cluster.Purge(ctx, now); err != nil {
			p.log.Debug("purging the shared table failed", "err", err)
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.table.Purge(now) > 0 {
		p.save()
	}
}

// save writes the table to its file; called with mu held, in file mode. A failure is logged,
// not returned: the table holds the names, so routing works; a restart would lose them until the
// private side announces them again.
func (p *Proxy) save() {
	if err := p.table.Save(p.store); err != nil {
		p.log.Error("saving announcements failed", "file", p.store, "err", err)
	}
}

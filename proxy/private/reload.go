package private

import (
	"maps"
	"slices"
	"time"

	"epsproxy/matcher"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// configured is the set of announcements the settings file makes.
func configured(s Settings) map[key]Announcement {
	m := map[key]Announcement{}
	for _, a := range s.Announce {
		a.Domain, _ = matcher.Normalize(a.Domain) // checked by Validate
		m[key{a.Domain, a.Proxy}] = a
	}
	return m
}

// liveKeys are the keys of the private block a reload applies: read where they are used
// (Proxy.live) or applied by Reload. The others (workers, queue, terminate_tls, relay_loops,
// grant_check_every) keep their start values until a restart.
var liveKeys = append([]string{
	"announce", "reannounce_every", "dial_timeout", "standby", "standby_wait", "proxy_protocol",
	"internal_endpoint", "endpoints", "dial_back_endpoints", "runtime_targets", "max_names_per_operator",
}, proxy.LiveRelayKeys...)

// Reload applies settings read again (SIGHUP). The announcements the file makes are
// reconciled at once: a name added or changed is stored and announced, a name removed is dropped
// and withdrawn at its public proxy (retried by the announcer until the public proxy confirms);
// names added at run time (announceConnection) are left alone unless the file now names the
// same name for the same public proxy, which wins as at start. The other keys in liveKeys apply
// from the next use: dial_timeout, standby (the pools are resized, started or stopped),
// standby_wait, proxy_protocol, internal_endpoint, endpoints, dial_back_endpoints,
// runtime_targets, max_names_per_operator, reannounce_every, and the relay's idle_timeout,
// fin_timeout (relayed connections included), max_pairs and drain_timeout. Relayed connections
// live on. The changed keys not in liveKeys are returned in restart. Nothing changes when err is
// not nil.
func (p *Proxy) Reload(s Settings) (restart []string, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	want := configured(s)
	var removed []Announcement
	err = p.anns.update(func(m map[key]Announcement) error {
		for k, a := range m {
			if _, kept := want[k]; !kept && a.Owner == "" {
				removed = append(removed, a)
				delete(m, k)
			}
		}
		maps.Copy(m, want)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.Relay.Apply(p.relay); err != nil {
		return nil, err
	}
	p.cur.Store(&s)
	p.drain.Store(int64(s.Relay.DrainTimeout.D()))
	if s.standbyOn() {
		p.startStandby()
	}
	p.withdrawLater(removed)
	p.reannounce.Store(int64(s.ReannounceEvery.D()))
	select {
	case p.changed <- struct{}{}:
	default:
	}
	p.log.Info("settings reloaded", "announced", len(want), "withdrawn", len(removed))
	return proxy.RestartKeys(p.s, s, liveKeys), nil
}

// withdrawLater queues withdrawals for the announcer, which sends them with the next round.
func (p *Proxy) withdrawLater(list []Announcement) {
	if len(list) == 0 {
		return
	}
	p.withdrawMu.Lock()
	defer p.withdrawMu.Unlock()
	for _, a := range list {
		p.withdrawals[key{a.Domain, a.Proxy}] = struct{}{}
	}
}

// sendWithdrawals tells each public proxy the names it should drop; those it confirmed leave the
// queue. A name announced again meanwhile is not withdrawn.
func (p *Proxy) sendWithdrawals() bool {
	p.withdrawMu.Lock()
	pending := slices.Collect(maps.Keys(p.withdrawals))
	p.withdrawMu.Unlock()
	if len(pending) == 0 {
		return true
	}
	current := p.anns.snapshot()
	now := time.Now()
	byProxy := map[string][]wire.Announcement{}
	for _, k := range pending {
		if _, again := current[k]; again {
			p.dropWithdrawal(k)
			continue
		}
		byProxy[k.proxy] = append(byProxy[k.proxy], wire.Announcement{Domain: k.domain, ExpiresAt: &now})
	}
	ok := true
	for public, list := range byProxy {
		for _, batch := range batches(list) {
			if !p.announceTo(public, batch) {
				ok = false
				continue
			}
			for _, a := range batch {
				p.dropWithdrawal(key{a.Domain, public})
			}
		}
	}
	return ok
}

func (p *Proxy) dropWithdrawal(k key) {
	p.withdrawMu.Lock()
	delete(p.withdrawals, k)
	p.withdrawMu.Unlock()
}

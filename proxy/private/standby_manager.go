package private

import (
	"slices"
	"time"
)

// poolKey names a standby pool: the public proxy, and the instance it was made for (empty for
// the first pool of a proxy, which supplies whichever instance answers until it learns there are
// several and settles on the one it got).
type poolKey struct{ proxy, instance string }

// standbyManager keeps a pool for every public proxy with a live announcement, and one more for
// each further live instance of a public proxy that runs several, and closes the pools nothing
// needs any more. It follows standby as reloads change it: the pools are resized, or all closed
// while it is off (their sockets stay with the relay until used or expired).
func (p *Proxy) standbyManager() {
	defer p.wg.Done()
	pools := map[poolKey]*standbyPool{}
	defer func() {
		for _, sp := range pools {
			sp.close()
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	size := p.live().Standby
	for {
		want := map[string]bool{}
		if n := p.live().Standby; n > 0 {
			for _, a := range p.anns.liveList(time.Now()) {
				want[a.Proxy] = true
			}
			if n != size {
				size = n
				for _, sp := range pools {
					sp.resize(n)
					sp.wake()
				}
			}
		}
		for k, sp := range pools {
			if !want[k.proxy] {
				sp.close()
				delete(pools, k)
				if k.instance == "" {
					p.placers.Delete(k.proxy)
				}
			}
		}
		for proxy := range want {
			p.placePools(pools, proxy)
		}
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

// placePools makes proxy's pools match its live instances: one pool per instance, the first one
// (key instance "") always there.
func (p *Proxy) placePools(pools map[poolKey]*standbyPool, proxy string) {
	first := poolKey{proxy, ""}
	if pools[first] == nil {
		sp := newStandbyPool(p, proxy, "")
		sp.first = true
		pools[first] = sp
		p.placers.Store(proxy, sp)
		go sp.run()
	}
	covered := map[string]poolKey{}
	var live []string
	if target, instances := pools[first].placement(); target != "" {
		covered[target] = first
		live = instances
	}
	for k, sp := range pools {
		if k.proxy != proxy || k == first {
			continue
		}
		target, instances := sp.placement()
		if len(instances) > len(live) {
			live = instances
		}
		if _, dup := covered[target]; dup || target == "" {
			sp.close() // another pool supplies that instance, or its instance is gone
			delete(pools, k)
			continue
		}
		covered[target] = k
	}
	pin, pinned := p.live().Endpoints[proxy]
	for _, ep := range live {
		if _, ok := covered[ep]; ok || (pinned && ep != pin) {
			continue
		}
		k := poolKey{proxy, ep}
		if old := pools[k]; old != nil {
			old.close()
		}
		sp := newStandbyPool(p, proxy, ep)
		pools[k] = sp
		go sp.run()
	}
	for ep, k := range covered {
		if k != first && len(live) > 0 && !slices.Contains(live, ep) {
			pools[k].close() // the instance left the cluster
			delete(pools, k)
		}
	}
}

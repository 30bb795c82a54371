package private

import "time"

// standbyManager keeps a pool for every public proxy with a live announcement, and closes the
// pool of one that has none left.
func (p *Proxy) standbyManager() {
	defer p.wg.Done()
	pools := map[string]*standbyPool{}
	defer func() {
		for _, sp := range pools {
			sp.close()
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		want := map[string]bool{}
		for _, a := range p.anns.liveList(time.Now()) {
			want[a.Proxy] = true
		}
		for proxy := range want {
			if pools[proxy] == nil {
				sp := newStandbyPool(p, proxy)
				pools[proxy] = sp
				go sp.run()
			}
		}
		for proxy, sp := range pools {
			if !want[proxy] {
				sp.close()
				delete(pools, proxy)
			}
		}
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

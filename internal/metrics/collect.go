package metrics

import (
	"iter"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/engine/relay"
)

// PairDone adds a finished pair's bytes to its domain, for the loop that served it. Call it from
// the relay's OnDone (it runs on that loop, which is what makes the per-loop entry safe without
// atomics): a pair's a side is the client's, so AToB is upstream.
func (d *Domains) PairDone(st relay.Stats) {
	dm := d.lookup(st.Tag)
	if st.Loop < 0 || st.Loop >= len(dm.done) {
		return
	}
	b := &dm.done[st.Loop]
	b.up += st.AToB
	b.down += st.BToA
}

// Describe sends the descriptors of the connection metrics.
func (d *Domains) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{d.accepted, d.refused, d.relayed, d.bytes, d.active} {
		ch <- desc
	}
}

// relayFigures is one domain's relay bytes and active pairs at a scrape.
type relayFigures struct {
	up, down int64
	active   int
}

// Collect sends every label's counters, and the relay's bytes and active pairs per domain (not
// for NoName, which only has refusals, nor Unannounced, which is only accepted and refused):
// for each relay loop, on its turn (relay.Visit), the bytes its finished pairs left (PairDone)
// plus those of its live pairs so far. A connection's bytes therefore show up while it is open,
// and the totals never go down. Refusals are sent per reason once there was one.
func (d *Domains) Collect(ch chan<- prometheus.Metric) {
	all := *d.all.Load()
	figs := make([]relayFigures, len(all))
	if d.rl != nil {
		d.rl.Visit(func(loop int, live iter.Seq[relay.Flow]) {
			for i, dm := range all {
				figs[i].up += dm.done[loop].up
				figs[i].down += dm.done[loop].down
			}
			for f := range live {
				// A name given its label after all was read is left for the next scrape.
				if i := d.lookup(f.Tag).idx; i < len(figs) {
					figs[i].up += f.AToB
					figs[i].down += f.BToA
					figs[i].active++
				}
			}
		})
	}
	for i, dm := range all {
		for r := range dm.refused {
			if n := dm.refused[r].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(d.refused, prometheus.CounterValue, float64(n), dm.name, d.reasons[r])
			}
		}
		// Nothing is accepted without a name, and nothing unannounced is relayed: those labels
		// have only the series that can move.
		if dm == d.noName {
			continue
		}
		ch <- prometheus.MustNewConstMetric(d.accepted, prometheus.CounterValue, float64(dm.accepted.Load()), dm.name)
		if dm == d.unannounced {
			continue
		}
		ch <- prometheus.MustNewConstMetric(d.relayed, prometheus.CounterValue, float64(dm.relayed.Load()), dm.name)
		if d.rl != nil {
			ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.CounterValue, float64(figs[i].up), dm.name, "upstream")
			ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.CounterValue, float64(figs[i].down), dm.name, "downstream")
			ch <- prometheus.MustNewConstMetric(d.active, prometheus.GaugeValue, float64(figs[i].active), dm.name)
		}
	}
}

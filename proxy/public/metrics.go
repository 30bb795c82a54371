package public

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/engine"
	"epsproxy/internal/metrics"
)

// The public proxy's metrics: the engine's Observer counts each client under its announcement
// (metrics.Domains, which also reads the relay's bytes at scrape time), refusals on the internal
// listener by reason, and Metrics adds the gauges read from the engine, the table and the shared
// store at each scrape.

// observer is the engine's Observer. It runs on the event loops: counters only.
type observer struct {
	domains  *metrics.Domains
	internal []atomic.Int64 // refusals on the internal listener, by engine.Refusal
	noRoute  engine.Refusal
}

func newObserver(d *metrics.Domains) *observer {
	reasons := engine.RefusalReasons()
	return &observer{domains: d, internal: make([]atomic.Int64, len(reasons)), noRoute: engine.Refusal(slices.Index(reasons, "no_route"))}
}

func (o *observer) Routed(domain string)  { o.domains.Get(domain).Accepted() }
func (o *observer) Relayed(domain string) { o.domains.Get(domain).Relayed() }

// Refused counts a public connection under its announcement; a name nobody announced is accepted
// and refused under metrics.Unannounced, a connection refused before its name was read under
// metrics.NoName.
func (o *observer) Refused(domain string, why engine.Refusal, internal bool) {
	switch {
	case internal:
		if int(why) < len(o.internal) {
			o.internal[why].Add(1)
		}
		return
	case domain == "" && why == o.noRoute:
		d := o.domains.Unannounced()
		d.Accepted()
		d.Refused(int(why))
		return
	}
	o.domains.Get(domain).Refused(int(why))
}

// Metrics registers the public proxy's metrics with reg: the connections per announced domain
// and the relay's bytes (metrics.Domains), refusals on the internal listener, the standby
// sockets and tokens per operator, the announcements, clients in the hello and waiting phases,
// the EPS calls and their queue, and, for an instance of several, whether the shared store is
// up. The standby operators are those whose private proxies reserved tokens through EPS, which
// their node let through only for operators of its directory (at most the engine's
// MaxStandbyOperators). Call it once.
func (p *Proxy) Metrics(reg prometheus.Registerer) error {
	reasons := engine.RefusalReasons()
	internal := metrics.NewDesc("internal_connections_refused_total", "Connections to the internal listener (private proxies dialing in) refused, by reason.", "reason")
	parked := metrics.NewDesc("standby_parked_sockets", "Standby sockets parked, waiting for a client, by the operator that reserved them.", "operator")
	tokens := metrics.NewDesc("standby_tokens", "Standby tokens reserved (or accepted from another instance) and not presented yet, by operator.", "operator")
	reused := metrics.NewDesc("standby_reused_total", "Framed standby sockets parked again after serving a client: clients that cost no new connection between the proxies.")
	hello := metrics.NewDesc("hello_connections", "Clients still sending their ClientHello.")
	waiting := metrics.NewDesc("waiting_clients", "Routed clients waiting for their private proxy to dial back.")
	queued := metrics.NewDesc("eps_client_queued_calls", "EPS calls waiting for a worker of the call pool.")
	gauges := metrics.NewFunc(func(ch chan<- prometheus.Metric) {
		for i := range p.obs.internal {
			if n := p.obs.internal[i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(internal, prometheus.CounterValue, float64(n), reasons[i])
			}
		}
		for _, op := range p.eng.StandbyByOperator() {
			ch <- prometheus.MustNewConstMetric(parked, prometheus.GaugeValue, float64(op.Parked), op.Operator)
			ch <- prometheus.MustNewConstMetric(tokens, prometheus.GaugeValue, float64(op.Tokens), op.Operator)
		}
		ch <- prometheus.MustNewConstMetric(reused, prometheus.CounterValue, float64(p.eng.Stats().StandbyReused.Load()))
		ch <- prometheus.MustNewConstMetric(hello, prometheus.GaugeValue, float64(p.eng.HelloConns()))
		ch <- prometheus.MustNewConstMetric(waiting, prometheus.GaugeValue, float64(p.eng.Pending()))
		ch <- prometheus.MustNewConstMetric(queued, prometheus.GaugeValue, float64(p.pool.Queued()))
	}, internal, parked, tokens, reused, hello, waiting, queued)
	store := "file"
	if p.cluster != nil {
		store = "redis"
	}
	cs := []prometheus.Collector{p.domains, p.calls, gauges,
		metrics.NewAnnouncements(store, func() (int, int) { return p.table.Counts(time.Now()) })}
	if p.cluster != nil {
		up := metrics.NewDesc("cluster_store_up", "Whether this instance follows the shared store in Redis (1) or serves its last copy while Redis is unreachable (0).")
		instances := metrics.NewDesc("cluster_instances", "Live instances of this public proxy the shared store lists.")
		cs = append(cs, metrics.NewFunc(func(ch chan<- prometheus.Metric) {
			st := p.cluster.Stats()
			v := 0.0
			if st.Up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, v)
			ch <- prometheus.MustNewConstMetric(instances, prometheus.GaugeValue, float64(st.Instances))
		}, up, instances))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

package private

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/internal/metrics"
)

// The private proxy's metrics: each client (a dial-back or a standby client) counts under the
// announcement that serves its name, with why it was refused if it was (metrics.Domains, which
// also reads the relay's bytes at scrape time); Metrics adds the gauges read at each scrape.
// Connections whose TLS this proxy terminates are accepted but never relayed: the relay's
// figures leave them out.

// refusal is why the private proxy refused a client: an index into refusalReasons.
type refusal int

const (
	refusedBadRequest refusal = iota
	refusedNotAnnounced
	refusedEndpoint
	refusedDialQueue
	refusedDialBack
	refusedBadHello
	refusedInternal
	refusedTerminate
	refusedRelay
)

// refusalReasons name the refusals in the metrics, by refusal.
var refusalReasons = []string{
	refusedBadRequest:   "bad_request",          // incomingConnection with a name or endpoint that is not one
	refusedNotAnnounced: "not_announced",        // a name not announced to the public proxy asking
	refusedEndpoint:     "endpoint_not_allowed", // a dial-back to an endpoint neither pinned nor learned
	refusedDialQueue:    "dial_queue_full",      // every dial-back slot taken
	refusedDialBack:     "dial_back_failed",     // the public proxy's internal endpoint did not take the token
	refusedBadHello:     "bad_hello",            // a standby client's first bytes were no ClientHello
	refusedInternal:     "internal_unreachable", // the internal server refused or did not answer
	refusedTerminate:    "terminate_failed",     // terminate_tls could not take the connection
	refusedRelay:        "relay_refused",        // the relay did not take the pair (max_pairs, shutdown)
}

// refused counts a client of domain ("" before a name was read) refused for why.
func (p *Proxy) refused(domain string, why refusal) { p.domains.Get(domain).Refused(int(why)) }

// unannounced counts a client for a name this proxy did not announce to the public proxy asking:
// accepted and refused under metrics.Unannounced, whatever the name.
func (p *Proxy) unannounced() {
	d := p.domains.Unannounced()
	d.Accepted()
	d.Refused(int(refusedNotAnnounced))
}

// Metrics registers the private proxy's metrics with reg: the clients per announced domain and
// the relay's bytes (metrics.Domains), the EPS calls, the announcements, the standby sockets
// waiting for a client and the dial-backs queued. Call it once.
func (p *Proxy) Metrics(reg prometheus.Registerer) error {
	waiting := metrics.NewDesc("standby_waiting_sockets", "Standby sockets dialed in to public proxies and waiting for a client.")
	queued := metrics.NewDesc("dial_backs_queued", "Dial-backs (incomingConnection) waiting for a dial worker.")
	gauges := metrics.NewFunc(func(ch chan<- prometheus.Metric) {
		ch <- prometheus.MustNewConstMetric(waiting, prometheus.GaugeValue, float64(p.relay.Awaiting()))
		ch <- prometheus.MustNewConstMetric(queued, prometheus.GaugeValue, float64(len(p.dials)))
	}, waiting, queued)
	anns := metrics.NewAnnouncements("file", func() (alive, expired int) {
		now := time.Now()
		for _, a := range p.anns.snapshot() {
			if live(a, now) {
				alive++
			} else {
				expired++
			}
		}
		return alive, expired
	})
	for _, c := range []prometheus.Collector{p.domains, p.calls, gauges, anns} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

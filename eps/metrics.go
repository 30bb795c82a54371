package eps

import (
	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/internal/metrics"
)

// Metrics registers the node's metrics with reg: the calls it delivers to its own service, timed
// by method and result (a method the directory does not list for this operator counts as
// metrics.OtherMethod, so callers cannot make labels up), and the state and counts of each
// service endpoint (labelled by its URL from the settings). Call it once, before Start.
func (n *Node) Metrics(reg prometheus.Registerer) error {
	self := n.directory().Entry(n.name)
	n.deliveries = metrics.NewCalls("eps_delivery_duration_seconds",
		"Calls this node delivered to its own service, by method and result, and how long they took.",
		func(method string) bool { _, m := self.Method(method); return m != nil })
	up := metrics.NewDesc("eps_service_endpoint_up", "Whether the node believes the service endpoint up (1) or down (0).", "endpoint")
	calls := metrics.NewDesc("eps_service_endpoint_calls_total", "Calls posted to each service endpoint: delivered (it answered) or failed (unreachable or timed out).", "endpoint", "outcome")
	endpoints := metrics.NewFunc(func(ch chan<- prometheus.Metric) {
		for _, e := range n.Stats().Service {
			v := 0.0
			if e.Up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, v, e.URL)
			ch <- prometheus.MustNewConstMetric(calls, prometheus.CounterValue, float64(e.Delivered), e.URL, "delivered")
			ch <- prometheus.MustNewConstMetric(calls, prometheus.CounterValue, float64(e.Failed), e.URL, "failed")
		}
	}, up, calls)
	for _, c := range []prometheus.Collector{n.deliveries, endpoints} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

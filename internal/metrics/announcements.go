package metrics

import "github.com/prometheus/client_golang/prometheus"

// NewAnnouncements is the gauge epsproxy_announcements{store, state} of a proxy's announcement
// store (store names it: where the announcements are kept): count returns, at each scrape, the
// announcements live and those expired but not purged yet.
func NewAnnouncements(store string, count func() (live, expired int)) *Func {
	desc := NewDesc("announcements", "Announcements this proxy holds, by store and state: live, or expired and not purged yet.", "store", "state")
	return NewFunc(func(ch chan<- prometheus.Metric) {
		live, expired := count()
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(live), store, "live")
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(expired), store, "expired")
	}, desc)
}

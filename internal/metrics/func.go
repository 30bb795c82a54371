package metrics

import "github.com/prometheus/client_golang/prometheus"

// NewDesc describes a metric of this project: name under Namespace, with variable labels.
func NewDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// Func is a collector whose metrics are read from the process's state at each scrape (gauges of
// what a table or a pool holds now): collect sends them, described by descs. Build the metrics
// with prometheus.MustNewConstMetric.
type Func struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

// NewFunc returns the collector that runs collect at each scrape.
func NewFunc(collect func(ch chan<- prometheus.Metric), descs ...*prometheus.Desc) *Func {
	return &Func{descs: descs, collect: collect}
}

// Describe sends the descriptors.
func (f *Func) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range f.descs {
		ch <- d
	}
}

// Collect runs the collect function.
func (f *Func) Collect(ch chan<- prometheus.Metric) { f.collect(ch) }

package metrics

import (
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Flatten turns gathered (or parsed) metric families into one value per series, keyed as the
// exposition format writes a series: name{label="value",...} with the labels in name order, or
// the bare name without labels. A counter or gauge gives its value, a histogram its count of
// observations, a summary its count. For tests and tools that read a scrape.
func Flatten(fams []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	var b strings.Builder
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			b.Reset()
			b.WriteString(f.GetName())
			labels := slices.SortedFunc(slices.Values(m.GetLabel()), func(x, y *dto.LabelPair) int { return strings.Compare(x.GetName(), y.GetName()) })
			for i, l := range labels {
				if i == 0 {
					b.WriteByte('{')
				} else {
					b.WriteByte(',')
				}
				b.WriteString(l.GetName() + "=" + strconv.Quote(l.GetValue()))
			}
			if len(labels) > 0 {
				b.WriteByte('}')
			}
			out[b.String()] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Summary != nil:
		return float64(m.Summary.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

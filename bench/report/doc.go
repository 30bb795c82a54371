// Package report turns the benchmark's raw figures into what a reader looks at: medians and
// ratios, markdown tables and the connection chart (PNG, drawn with gonum.org/v1/plot).
//
// Typical use:
//
//	rate := report.Median(perRepRates)
//	t := report.Table{Title: "New connections", Header: []string{"target", "conns/s"},
//		Rows: [][]string{{"chain", report.Num(rate, 0)}}}
//	fmt.Print(t.Markdown())
//	err := report.Chart("bench/out/chart.png", "TLS passthrough", series)
//
// It only formats what it is given: it measures nothing and writes no file but the chart it is
// asked for.
package report

// Package harness runs the benchmark end to end: it builds the commands, starts the internal
// server and the four processes of the chain on free loopback ports (through internal/chain,
// which also turns on the proxies' admin listeners and reads their /debug/stats), the in-process
// bulk backends and, where installed, HAProxy as one and two SNI-passthrough hops; then it runs
// the scenarios with every target interleaved in each repetition (chain, direct to the backend,
// HAProxy; the quiet scenario watches the chain at rest, no target), stops everything it
// started, and writes the report: markdown tables, results.json with every raw figure, and
// chart.png.
//
// Typical use (what bench/cmd/bench does):
//
//	res, err := harness.Run(ctx, harness.Options{Quick: true, Out: "bench/out", Stdout: os.Stdout, Log: os.Stderr})
//
// It owns the processes and temporary files it creates and the output directory it is given;
// it must not touch the repository's settings/dev (it works on a copy) or any process it did not
// start. Figures are reported against the targets listed in BENCHMARKS.md, never enforced: a
// missed target is a line in the report, not an error. CPU, memory, context switch and
// descriptor figures come from /proc through internal/proc.
package harness

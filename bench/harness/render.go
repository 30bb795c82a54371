package harness

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"epsproxy/bench/report"
	"epsproxy/internal/chain"
)

func num(f Float, prec int) string { return report.Num(float64(f), prec) }
func times(f Float) string         { return report.Times(float64(f)) }

// Markdown renders the whole report: the run's header, one table per scenario and the targets.
func Markdown(res *Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Benchmark: %s run, %d repetitions\n\n", res.Mode, res.Plan.Reps)
	m := res.Machine
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs, %d MiB, %s, %s, %s\n", m.CPUModel, m.CPUs, m.MemoryMiB, m.OS, m.Kernel, m.Go)
	fmt.Fprintf(&b, "- HAProxy: %s\n", orDash(res.HAProxy))
	fmt.Fprintf(&b, "- Load average (1/5/15 min): %s at start, %s at the end\n", orDash(res.LoadAvgStart), orDash(res.LoadAvgEnd))
	fmt.Fprintf(&b, "- Ran %s, %s\n", res.Started.UTC().Format("2006-01-02 15:04 MST"), res.Finished.Sub(res.Started).Round(time.Second))
	for _, s := range res.Skipped {
		fmt.Fprintf(&b, "- Skipped: %s\n", s)
	}
	b.WriteString("\nEvery figure is a median over the repetitions; within a repetition the targets run one after\n" +
		"another (order rotated), and \"× direct\" is the median of each repetition's ratio against direct.\n\n")
	if len(res.Summary.Conns) > 0 {
		b.WriteString(connsTable(res).Markdown() + "\n")
		b.WriteString(cpuTable(res).Markdown() + "\n")
		if t, ok := budgetTable(res, budgetConcurrency); ok {
			b.WriteString(t.Markdown() + "\n")
		}
	}
	if len(res.Syscalls) > 0 {
		b.WriteString(syscallTable(res).Markdown() + "\n")
	}
	if len(res.Summary.Bulk) > 0 {
		b.WriteString(bulkTable(res).Markdown() + "\n")
	}
	if len(res.Idle) > 0 {
		b.WriteString(idleTable(res).Markdown() + "\n")
	}
	if len(res.Summary.Seed) > 0 {
		b.WriteString(seedTable(res).Markdown() + "\n")
		if t, ok := seedCPUTable(res); ok {
			b.WriteString(t.Markdown() + "\n")
		}
	}
	if res.Quiet != nil {
		b.WriteString(quietTable(res.Quiet).Markdown() + "\n")
	}
	b.WriteString(targetsTable(res).Markdown())
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func connsTable(res *Results) report.Table {
	t := report.Table{
		Title:  "1. New connections: TCP connect, full TLS handshake, one GET, close",
		Header: []string{"target", "c", "conns/s", "× direct", "p50 ms", "p90 ms", "p99 ms", "+p50 ms vs direct", "proxy CPU µs/conn", "proxy switches/conn", "errors"},
		Notes: []string{fmt.Sprintf("%.1f s per target and concurrency per repetition; latency from connect to the whole response. "+
			"Proxy CPU: the chain's four processes, or the HAProxy process(es), from /proc/PID/stat; "+
			"switches: their threads' context switches, voluntary and not, from /proc/PID/task/*/status.", res.Plan.ConnSeconds)},
	}
	for _, r := range res.Summary.Conns {
		vs, added := times(r.VsDirect), num(r.AddedP50ms, 2)
		if r.Target == TargetDirect {
			vs, added = "", ""
		}
		t.Rows = append(t.Rows, []string{r.Target, strconv.Itoa(r.Concurrency), num(r.ConnsPerSec, 0), vs,
			num(r.P50ms, 2), num(r.P90ms, 2), num(r.P99ms, 2), added, num(r.ProxyCPUPerConnUs, 0), num(r.ProxySwitchesPerConn, 1),
			strconv.Itoa(r.Errors)})
	}
	return t
}

func cpuTable(res *Results) report.Table {
	cols := []string{chain.Public, chain.Private, chain.PublicEPS, chain.PrivateEPS}
	t := report.Table{
		Title:  "CPU per new connection, µs (the chain's processes; the internal server for comparison)",
		Header: []string{"c", "public proxy", "private proxy", "public EPS", "private EPS", "chain total", "internal server (chain)", "internal server (direct)"},
	}
	row := func(target string, c int) *ConnsRow {
		for i := range res.Summary.Conns {
			if r := &res.Summary.Conns[i]; r.Target == target && r.Concurrency == c {
				return r
			}
		}
		return nil
	}
	for _, r := range res.Summary.Conns {
		if r.Target != TargetChain {
			continue
		}
		line := []string{strconv.Itoa(r.Concurrency)}
		for _, p := range cols {
			line = append(line, num(lookup(r.CPUPerConnUs, p), 0))
		}
		line = append(line, num(r.ProxyCPUPerConnUs, 0), num(lookup(r.CPUPerConnUs, chain.Internal), 0))
		if d := row(TargetDirect, r.Concurrency); d != nil {
			line = append(line, num(lookup(d.CPUPerConnUs, chain.Internal), 0))
		}
		t.Rows = append(t.Rows, line)
	}
	t.Notes = []string{fmt.Sprintf("/proc/PID/stat counts in %v ticks; at c=1 a phase spans few of them.", 10*time.Millisecond)}
	return t
}

// budgetConcurrency is the concurrency budgetTable reads: the one the targets judge.
const budgetConcurrency = 25

// budgetTable puts every process a connection costs CPU in, for each target at concurrency c: the
// load generator, the internal server and the proxies. With the machine's cores all busy the rate
// follows the total, so direct's total over a target's predicts its × direct; the note says what
// the chain's proxies could cost for 0.80× direct with the endpoints as they were in this run.
// False when direct was not measured at c.
func budgetTable(res *Results, c int) (report.Table, bool) {
	var direct *ConnsRow
	for i := range res.Summary.Conns {
		if r := &res.Summary.Conns[i]; r.Target == TargetDirect && r.Concurrency == c {
			direct = r
		}
	}
	if direct == nil {
		return report.Table{}, false
	}
	endpoints := func(r *ConnsRow) float64 {
		return float64(lookup(r.CPUPerConnUs, ProcHarness) + lookup(r.CPUPerConnUs, chain.Internal))
	}
	directTotal := endpoints(direct)
	t := report.Table{
		Title: fmt.Sprintf("Where a new connection's CPU goes at c=%d, µs: every process, every target", c),
		Header: []string{"target", "load generator", "internal server", "proxies", "total",
			"direct's total ÷ total", "× direct (measured)"},
	}
	var note string
	for i := range res.Summary.Conns {
		r := &res.Summary.Conns[i]
		if r.Concurrency != c {
			continue
		}
		proxies := float64(r.ProxyCPUPerConnUs)
		if r.Target == TargetDirect {
			proxies = 0
		}
		total := endpoints(r) + proxies
		vs := times(r.VsDirect)
		if r.Target == TargetDirect {
			vs = ""
		}
		t.Rows = append(t.Rows, []string{r.Target, num(lookup(r.CPUPerConnUs, ProcHarness), 0),
			num(lookup(r.CPUPerConnUs, chain.Internal), 0), num(Float(proxies), 0), num(Float(total), 0),
			times(Float(report.Ratio(directTotal, total))), vs})
		if r.Target == TargetChain {
			note = fmt.Sprintf("For 0.80× direct at this run's endpoint costs behind the chain (%.0f µs), "+
				"its four processes would have %.0f µs per connection.", endpoints(r), directTotal/0.80-endpoints(r))
		}
	}
	t.Notes = []string{"The load generator is this harness (its own CPU from /proc/self/stat), so it counts behind every target. " +
		"With both cores busy the rate follows the total CPU per connection: direct's total over a target's is the × direct that predicts."}
	if note != "" {
		t.Notes = append(t.Notes, note)
	}
	return t, true
}

func lookup(m map[string]Float, k string) Float {
	if v, ok := m[k]; ok {
		return v
	}
	return Float(math.NaN())
}

func bulkTable(res *Results) report.Table {
	var others []string
	for _, r := range res.Summary.Bulk {
		if r.Target != TargetChain && r.Target != TargetDirect && !slices.Contains(others, r.Target) {
			others = append(others, r.Target)
		}
	}
	header := []string{"transport", "dir", "streams", "direct MB/s", "chain MB/s", "chain × direct"}
	for _, o := range others {
		header = append(header, o+" MB/s", o+" × direct")
	}
	header = append(header, "public proxy s/GiB", "private proxy s/GiB")
	for _, o := range others {
		header = append(header, o+" s/GiB")
	}
	t := report.Table{
		Title:  "2. Bulk: MB/s (10^6 bytes/s) at the receiver, and proxy CPU seconds per GiB relayed",
		Header: header,
		Notes: []string{fmt.Sprintf("%.2f s warm-up, then a %.2f s window per target. up = client to server. "+
			"raw = one real ClientHello record, then plain TCP to a plain TCP backend.", res.Plan.BulkWarmupSeconds, res.Plan.BulkWindowSeconds)},
	}
	get := func(tr, dir string, n int, target string) *BulkRow {
		for i := range res.Summary.Bulk {
			if r := &res.Summary.Bulk[i]; r.Transport == tr && r.Direction == dir && r.Streams == n && r.Target == target {
				return r
			}
		}
		return nil
	}
	errs := 0
	for _, r := range res.Summary.Bulk {
		errs += r.Errors
		if r.Target != TargetDirect {
			continue
		}
		line := []string{r.Transport, r.Direction, strconv.Itoa(r.Streams), num(r.MBps, 0)}
		ch := get(r.Transport, r.Direction, r.Streams, TargetChain)
		if ch != nil {
			line = append(line, num(ch.MBps, 0), times(ch.VsDirect))
		} else {
			line = append(line, "–", "–")
		}
		for _, o := range others {
			if x := get(r.Transport, r.Direction, r.Streams, o); x != nil {
				line = append(line, num(x.MBps, 0), times(x.VsDirect))
			} else {
				line = append(line, "–", "–")
			}
		}
		for _, p := range []string{chain.Public, chain.Private} {
			if ch != nil {
				line = append(line, num(lookup(ch.CPUPerGiB, p), 3))
			} else {
				line = append(line, "–")
			}
		}
		for _, o := range others {
			x := get(r.Transport, r.Direction, r.Streams, o)
			if x == nil {
				line = append(line, "–")
				continue
			}
			sum := 0.0
			for _, p := range proxyProcs(o) {
				sum += float64(lookup(x.CPUPerGiB, p))
			}
			line = append(line, report.Num(sum, 3))
		}
		t.Rows = append(t.Rows, line)
	}
	if errs > 0 {
		t.Notes = append(t.Notes, fmt.Sprintf("%d bulk phases reported a stream error: see results.json.", errs))
	}
	return t
}

func idleTable(res *Results) report.Table {
	t := report.Table{
		Title:  "3. Idle: connections held open through the proxy (handshake and one keep-alive GET, then nothing)",
		Header: []string{"target", "process", "held", "failed", "RSS before MiB", "RSS after MiB", "RSS B/conn", "fds/conn", "goroutines/conn"},
		Notes: []string{"One run per target, before every load scenario, on freshly started processes; VmRSS from /proc/PID/status, goroutines from /debug/stats.",
			"Per-connection figures include fixed costs spread over the connections held: with fewer connections (quick mode) they read higher."},
	}
	for _, ph := range res.Idle {
		for _, p := range proxyProcs(ph.Target) {
			ip, ok := ph.Procs[p]
			if !ok {
				continue
			}
			g := num(ip.GoroutinesPerConn, 3)
			t.Rows = append(t.Rows, []string{ph.Target, p, strconv.Itoa(ph.Held), strconv.Itoa(ph.Failed),
				report.Num(float64(ip.RSSBefore)/(1<<20), 1), report.Num(float64(ip.RSSAfter)/(1<<20), 1),
				num(ip.RSSPerConn, 0), num(ip.FDsPerConn, 2), g})
		}
	}
	return t
}

func seedTable(res *Results) report.Table {
	t := report.Table{
		Title:  "4. The seed's stress test: parallel -j 25 curl, one connection per request",
		Header: []string{"target", "requests (all reps)", "req/s", "× direct", "failed"},
	}
	for _, r := range res.Summary.Seed {
		vs := times(r.VsDirect)
		if r.Target == TargetDirect {
			vs = ""
		}
		t.Rows = append(t.Rows, []string{r.Target, strconv.Itoa(r.Requests), num(r.ReqPerSec, 0), vs, strconv.Itoa(r.Failed)})
	}
	if len(res.Seed) > 0 {
		// The run's certificate path and ports are temporary; results.json has the exact lines.
		cmd := strings.Replace(seedCommand(res.Plan.SeedRequests, res.Plan.SeedParallel, "ROOT", "PORT"), "'ROOT'", "ROOT", 1)
		t.Notes = append(t.Notes, "Command: `"+cmd+"`, with ROOT the run's root.crt and PORT the public proxy's TLS port (or the internal server's, for direct).")
	}
	return t
}

// seedCPUTable splits the machine's busy CPU per request of the seed's stress test: the proxies,
// the internal server, and the rest (parallel, curl and the shell, which this harness cannot
// watch process by process). parallel and curl saturate the machine, so the proxies' CPU alone
// predicts the chain's × direct: direct's machine CPU per request over that plus the proxies'.
// False when the phases carry no machine figure (a results file from before it was measured).
func seedCPUTable(res *Results) (report.Table, bool) {
	var direct *SeedRow
	for i := range res.Summary.Seed {
		if r := &res.Summary.Seed[i]; r.Target == TargetDirect {
			direct = r
		}
	}
	if direct == nil || math.IsNaN(float64(direct.MachineMsPerReq)) {
		return report.Table{}, false
	}
	t := report.Table{
		Title: "Where a request of the seed's stress test goes, CPU ms per request",
		Header: []string{"target", "machine (every process)", "proxies", "proxy switches/req", "internal server",
			"the rest: parallel, curl", "× direct the proxies' CPU predicts", "× direct (measured)"},
	}
	for _, r := range res.Summary.Seed {
		proxies, predicted, vs := r.ProxyCPUPerReqMs, "", times(r.VsDirect)
		if r.Target == TargetDirect {
			proxies, vs = 0, ""
		} else {
			predicted = times(Float(report.Ratio(float64(direct.MachineMsPerReq), float64(direct.MachineMsPerReq+proxies))))
		}
		internal := lookup(r.CPUPerReqMs, chain.Internal)
		rest := r.MachineMsPerReq - proxies - internal - r.CPUPerReqMs[ProcHarness] // it waits for the shell: 0 if not read
		t.Rows = append(t.Rows, []string{r.Target, num(r.MachineMsPerReq, 1), num(proxies, 2),
			num(r.ProxySwitchesPerReq, 1), num(internal, 2), num(rest, 1), predicted, vs})
	}
	t.Notes = []string{"Machine: busy time over every CPU from /proc/stat (user, nice, system, irq, softirq) per request answered; " +
		"the rest is it less the proxies, the internal server and this harness. parallel and curl keep both cores busy, so a request's " +
		"CPU sets the rate: the proxies' share of it is what the chain's own CPU can cost this test. A measured × direct further from 1 " +
		"than the predicted one means the rest cost more per request, or the machine ran slower, in the chain's phases."}
	return t, true
}

func quietTable(q *QuietPhase) report.Table {
	t := report.Table{
		Title: "5. Quiet: the chain with no client and its standby pool full",
		Header: []string{"process", "CPU ms", "% of one core", fmt.Sprintf("target ≤ %g%%", QuietMaxCPUPercent),
			"context switches", "switches/s", fmt.Sprintf("target ≤ %d/s", QuietMaxSwitches)},
	}
	row := func(p string, judge bool) {
		qp, ok := q.Procs[p]
		if !ok {
			return
		}
		cpuV, swV := "reference", "reference"
		if judge {
			cpuV = verdict(float64(qp.CPUPercent), func(v float64) bool { return v <= QuietMaxCPUPercent })
			swV = verdict(float64(qp.SwitchesPerSec), func(v float64) bool { return v <= QuietMaxSwitches })
		}
		t.Rows = append(t.Rows, []string{p, report.Num(qp.CPUms, 0), num(qp.CPUPercent, 3), cpuV,
			strconv.FormatInt(qp.Switches, 10), num(qp.SwitchesPerSec, 1), swV})
	}
	for _, p := range ChainProcs {
		row(p, true)
	}
	for _, p := range quietRefs {
		row(p, false)
	}
	pool := fmt.Sprintf("settled after %.1f s", q.WaitSeconds)
	if !q.Steady {
		pool = fmt.Sprintf("still moving after %v: measured anyway", standbyWait)
	}
	t.Notes = []string{
		fmt.Sprintf("A %.1f s window with no client, once %d standby sockets waited at the private proxy and %d were parked at the public proxy (%s); "+
			"nothing reads /debug/stats during the window.", q.Seconds, q.StandbyWaiting, q.StandbyParked, pool),
		fmt.Sprintf("CPU from /proc/PID/stat in %v ticks (one tick is %s%% of a core over this window); context switches, voluntary and not, "+
			"summed over every thread from /proc/PID/task/*/status. HAProxy, when it runs, is a reference, not judged.",
			10*time.Millisecond, report.Num(100*0.01/q.Seconds, 3)),
	}
	return t
}

func targetsTable(res *Results) report.Table {
	t := report.Table{
		Title:  "Targets of the benchmark issue (reported, never enforced)",
		Header: []string{"target", "want", "measured", "verdict"},
	}
	for _, c := range res.Targets {
		t.Rows = append(t.Rows, []string{c.Name, c.Want, c.Measured, c.Verdict})
	}
	return t
}

// chartSeries turns the connection summary into one series per target.
func chartSeries(res *Results) []report.Series {
	var out []report.Series
	for _, target := range targetOrder {
		s := report.Series{Name: target}
		for _, r := range res.Summary.Conns {
			if r.Target != target || math.IsNaN(float64(r.ConnsPerSec)) || math.IsNaN(float64(r.P99ms)) {
				continue
			}
			s.Concurrency = append(s.Concurrency, r.Concurrency)
			s.ConnsPerSec = append(s.ConnsPerSec, float64(r.ConnsPerSec))
			s.P99Millis = append(s.P99Millis, float64(r.P99ms))
		}
		if len(s.Concurrency) > 0 {
			out = append(out, s)
		}
	}
	return out
}

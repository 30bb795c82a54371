package harness

import (
	"fmt"
	"math"
	"slices"

	"epsproxy/bench/report"
	"epsproxy/internal/chain"
)

// Summary is the medians the tables show; every raw figure stays in the phases.
type Summary struct {
	Conns []ConnsRow `json:"conns"`
	Bulk  []BulkRow  `json:"bulk"`
	Seed  []SeedRow  `json:"seed"`
}

// ConnsRow is one target at one concurrency, over the repetitions.
type ConnsRow struct {
	Target      string `json:"target"`
	Concurrency int    `json:"concurrency"`
	Reps        int    `json:"reps"`
	ConnsPerSec Float  `json:"conns_per_sec"`
	P50ms       Float  `json:"p50_ms"`
	P90ms       Float  `json:"p90_ms"`
	P99ms       Float  `json:"p99_ms"`
	// VsDirect is the median over repetitions of conns/s divided by direct's in the same
	// repetition; AddedP50ms likewise for p50 minus direct's p50.
	VsDirect   Float `json:"vs_direct"`
	AddedP50ms Float `json:"added_p50_ms"`
	Errors     int   `json:"errors"`
	// CPUPerConnUs is each process's median CPU per connection; ProxyCPUPerConnUs the median of
	// the sum over the target's proxy processes (the chain's four, or HAProxy's).
	CPUPerConnUs      map[string]Float `json:"cpu_per_conn_us"`
	ProxyCPUPerConnUs Float            `json:"proxy_cpu_per_conn_us"`
	// SwitchesPerConn and ProxySwitchesPerConn are the same for context switches.
	SwitchesPerConn      map[string]Float `json:"switches_per_conn,omitempty"`
	ProxySwitchesPerConn Float            `json:"proxy_switches_per_conn"`
}

// BulkRow is one target, transport, direction and stream count over the repetitions.
type BulkRow struct {
	Transport string           `json:"transport"`
	Direction string           `json:"direction"`
	Streams   int              `json:"streams"`
	Target    string           `json:"target"`
	MBps      Float            `json:"mb_per_sec"`
	VsDirect  Float            `json:"vs_direct"`
	CPUPerGiB map[string]Float `json:"cpu_s_per_gib"`
	Errors    int              `json:"errors"`
}

// SeedRow is one target of the README's stress test over the repetitions.
type SeedRow struct {
	Target    string `json:"target"`
	Requests  int    `json:"requests"`
	ReqPerSec Float  `json:"req_per_sec"`
	VsDirect  Float  `json:"vs_direct"`
	Failed    int    `json:"failed"`
	// Per request answered, medians over the repetitions: the machine's busy CPU, each watched
	// process's CPU, and the target's proxy processes' CPU and context switches together.
	MachineMsPerReq     Float            `json:"machine_cpu_ms_per_req"`
	CPUPerReqMs         map[string]Float `json:"cpu_ms_per_req"`
	ProxyCPUPerReqMs    Float            `json:"proxy_cpu_ms_per_req"`
	ProxySwitchesPerReq Float            `json:"proxy_switches_per_req"`
}

// targetOrder is the order targets appear in tables.
var targetOrder = []string{TargetChain, TargetDirect, TargetHAProxy1, TargetHAProxy2}

// proxyProcs are the processes whose CPU is a target's cost.
func proxyProcs(target string) []string {
	switch target {
	case TargetChain:
		return ChainProcs
	case TargetHAProxy1:
		return []string{ProcHAProxyA}
	case TargetHAProxy2:
		return []string{ProcHAProxyB, ProcHAProxyA}
	}
	return nil
}

func nan() float64 { return math.NaN() }

// sumOf adds up m's figures of names (a missing one counts 0).
func sumOf(m map[string]Float, names []string) float64 {
	sum := 0.0
	for _, n := range names {
		sum += float64(m[n])
	}
	return sum
}

// present returns the targets that appear in the phases, in table order.
func present(names []string) []string {
	var out []string
	for _, t := range targetOrder {
		if slices.Contains(names, t) {
			out = append(out, t)
		}
	}
	return out
}

// summarize fills res.Summary from the phases.
func summarize(res *Results) {
	res.Summary = Summary{Conns: summarizeConns(res.Conns), Bulk: summarizeBulk(res.Bulk), Seed: summarizeSeed(res.Seed)}
	res.Targets = checks(res)
}

func summarizeConns(phases []ConnsPhase) []ConnsRow {
	var names []string
	var concs []int
	for _, p := range phases {
		names = append(names, p.Target)
		if !slices.Contains(concs, p.Concurrency) {
			concs = append(concs, p.Concurrency)
		}
	}
	slices.Sort(concs)
	find := func(t string, c, rep int) *ConnsPhase {
		for i := range phases {
			if p := &phases[i]; p.Target == t && p.Concurrency == c && p.Rep == rep {
				return p
			}
		}
		return nil
	}
	var rows []ConnsRow
	for _, t := range present(names) {
		for _, c := range concs {
			row := ConnsRow{Target: t, Concurrency: c, CPUPerConnUs: map[string]Float{}, SwitchesPerConn: map[string]Float{}}
			var rate, p50, p90, p99, vs, added, proxy, proxySw []float64
			perProc, perProcSw := map[string][]float64{}, map[string][]float64{}
			for _, p := range phases {
				if p.Target != t || p.Concurrency != c {
					continue
				}
				row.Reps++
				row.Errors += p.Errors
				if p.OK == 0 {
					continue
				}
				rate, p50, p90, p99 = append(rate, p.ConnsPerSec), append(p50, p.P50ms), append(p90, p.P90ms), append(p99, p.P99ms)
				if d := find(TargetDirect, c, p.Rep); d != nil && d.OK > 0 {
					vs = append(vs, report.Ratio(p.ConnsPerSec, d.ConnsPerSec))
					added = append(added, p.P50ms-d.P50ms)
				}
				for n, v := range p.CPUPerConnUs {
					perProc[n] = append(perProc[n], float64(v))
				}
				for n, v := range p.SwitchesPerConn {
					perProcSw[n] = append(perProcSw[n], float64(v))
				}
				if pp := proxyProcs(t); len(pp) > 0 {
					proxy = append(proxy, sumOf(p.CPUPerConnUs, pp))
					if len(p.SwitchesPerConn) > 0 {
						proxySw = append(proxySw, sumOf(p.SwitchesPerConn, pp))
					}
				}
			}
			row.ConnsPerSec, row.P50ms, row.P90ms, row.P99ms = med(rate), med(p50), med(p90), med(p99)
			row.VsDirect, row.AddedP50ms, row.ProxyCPUPerConnUs = med(vs), med(added), med(proxy)
			row.ProxySwitchesPerConn = med(proxySw)
			for n, v := range perProc {
				row.CPUPerConnUs[n] = med(v)
			}
			for n, v := range perProcSw {
				row.SwitchesPerConn[n] = med(v)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func summarizeBulk(phases []BulkPhase) []BulkRow {
	type key struct {
		transport, direction string
		streams              int
	}
	var keys []key
	var names []string
	for _, p := range phases {
		names = append(names, p.Target)
		if k := (key{p.Transport, p.Direction, p.Streams}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	find := func(k key, t string, rep int) *BulkPhase {
		for i := range phases {
			if p := &phases[i]; p.Target == t && p.Rep == rep && (key{p.Transport, p.Direction, p.Streams}) == k {
				return p
			}
		}
		return nil
	}
	var rows []BulkRow
	for _, k := range keys {
		for _, t := range present(names) {
			row := BulkRow{Transport: k.transport, Direction: k.direction, Streams: k.streams, Target: t, CPUPerGiB: map[string]Float{}}
			var mbps, vs []float64
			perProc := map[string][]float64{}
			for _, p := range phases {
				if p.Target != t || (key{p.Transport, p.Direction, p.Streams}) != k {
					continue
				}
				if p.Error != "" {
					row.Errors++
				}
				if p.Bytes <= 0 {
					continue
				}
				mbps = append(mbps, p.MBps)
				if d := find(k, TargetDirect, p.Rep); d != nil && d.Bytes > 0 {
					vs = append(vs, report.Ratio(p.MBps, d.MBps))
				}
				for _, n := range proxyProcs(t) {
					perProc[n] = append(perProc[n], float64(p.CPUPerGiB[n]))
				}
			}
			row.MBps, row.VsDirect = med(mbps), med(vs)
			for n, v := range perProc {
				row.CPUPerGiB[n] = med(v)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func summarizeSeed(phases []SeedPhase) []SeedRow {
	var names []string
	for _, p := range phases {
		names = append(names, p.Target)
	}
	var rows []SeedRow
	for _, t := range present(names) {
		row := SeedRow{Target: t, CPUPerReqMs: map[string]Float{}}
		var rate, vs, machine, proxyCPU, proxySw []float64
		perProc := map[string][]float64{}
		for _, p := range phases {
			if p.Target != t {
				continue
			}
			row.Requests += p.Requests
			row.Failed += p.Failed
			rate = append(rate, p.ReqPerSec)
			if p.MachineCPUms > 0 {
				machine = append(machine, div(p.MachineCPUms, float64(p.OK)))
			}
			for n, v := range p.CPUms {
				perProc[n] = append(perProc[n], div(v, float64(p.OK)))
			}
			if procs := proxyProcs(t); len(procs) > 0 {
				cpu, sw := 0.0, 0.0
				for _, n := range procs {
					cpu += p.CPUms[n]
					sw += float64(p.Switches[n])
				}
				proxyCPU = append(proxyCPU, div(cpu, float64(p.OK)))
				proxySw = append(proxySw, div(sw, float64(p.OK)))
			}
			for _, d := range phases {
				if d.Target == TargetDirect && d.Rep == p.Rep {
					vs = append(vs, report.Ratio(p.ReqPerSec, d.ReqPerSec))
				}
			}
		}
		row.ReqPerSec, row.VsDirect = med(rate), med(vs)
		row.MachineMsPerReq, row.ProxyCPUPerReqMs, row.ProxySwitchesPerReq = med(machine), med(proxyCPU), med(proxySw)
		for n, v := range perProc {
			row.CPUPerReqMs[n] = med(v)
		}
		rows = append(rows, row)
	}
	return rows
}

func med(xs []float64) Float { return Float(report.Median(xs)) }

// checks compares the summary with the targets.
func checks(res *Results) []Check {
	var out []Check
	add := func(name, want string, v float64, unit string, prec int, ok func(float64) bool, extra string) {
		c := Check{Name: name, Want: want, Value: Float(v), Verdict: verdict(v, ok), Measured: "–"}
		if !math.IsNaN(v) {
			c.Measured = report.Num(v, prec) + unit + extra
		}
		out = append(out, c)
	}
	vs25, added1, cpu25 := nan(), nan(), nan()
	if r := connsOf(res, TargetChain, 25); r != nil {
		vs25, cpu25 = float64(r.VsDirect), float64(r.ProxyCPUPerConnUs)
	}
	if r := connsOf(res, TargetChain, 1); r != nil {
		added1 = float64(r.AddedP50ms)
	}
	// Against HAProxy as two chained hops, the same work (three TCP connections per client):
	// the median of each repetition's ratio, and CPU per connection against its two processes.
	vsTwo, cpuTwo := nan(), nan()
	if r := connsOf(res, TargetHAProxy2, 25); r != nil {
		cpuTwo = float64(r.ProxyCPUPerConnUs)
		var ratios []float64
		for _, ph := range res.Conns {
			if ph.Target != TargetChain || ph.Concurrency != 25 {
				continue
			}
			for _, h := range res.Conns {
				if h.Target == TargetHAProxy2 && h.Concurrency == 25 && h.Rep == ph.Rep {
					ratios = append(ratios, report.Ratio(ph.ConnsPerSec, h.ConnsPerSec))
				}
			}
		}
		vsTwo = report.Median(ratios)
	}
	add("new connections/s at c=25, chain vs haproxy-2hop (same run)", "≥ 1.00×", vsTwo, "×", 2, func(v float64) bool { return v >= 1 }, "")
	add("CPU per new connection at c=25, chain vs haproxy-2hop's two processes", "≤ 1.00×", report.Ratio(cpu25, cpuTwo), "×", 2,
		func(v float64) bool { return v <= 1 }, fmtIf(!math.IsNaN(cpuTwo), " ("+report.Num(cpu25, 0)+" against "+report.Num(cpuTwo, 0)+" µs)"))
	add("new connections/s at c=25, chain vs direct", "≥ 0.80×", vs25, "×", 2, func(v float64) bool { return v >= 0.80 }, "")
	add("added p50 latency at c=1", "≤ 1 ms", added1, " ms", 2, func(v float64) bool { return v <= 1 }, "")
	add("CPU per new connection, the four chain processes (c=25)", "≤ 400 µs", cpu25, " µs", 0, func(v float64) bool { return v <= 400 }, "")
	bulk := func(dir string) *BulkRow {
		for i := range res.Summary.Bulk {
			if r := &res.Summary.Bulk[i]; r.Target == TargetChain && r.Transport == "raw" && r.Streams == 1 && r.Direction == dir {
				return r
			}
		}
		return nil
	}
	for _, dir := range []string{"up", "down"} {
		v := nan()
		if r := bulk(dir); r != nil {
			v = float64(r.VsDirect)
		}
		add("raw TCP bulk, one stream "+dir+", chain vs direct", "≥ 0.33×", v, "×", 2, func(v float64) bool { return v >= 0.33 }, "")
	}
	for _, p := range []string{chain.Public, chain.Private} {
		worst, which := nan(), ""
		for _, dir := range []string{"up", "down"} {
			if r := bulk(dir); r != nil {
				if v := float64(r.CPUPerGiB[p]); !math.IsNaN(v) && (math.IsNaN(worst) || v > worst) {
					worst, which = v, dir
				}
			}
		}
		add("relay CPU per GiB, "+p+" (raw TCP, one stream, worse direction)", "≤ 0.70 s", worst, " s", 3, func(v float64) bool { return v <= 0.70 }, fmtIf(which != "", " ("+which+")"))
	}
	for _, p := range []string{chain.Public, chain.Private} {
		v := nan()
		for _, ph := range res.Idle {
			if ph.Target == TargetChain {
				v = float64(ph.Procs[p].RSSPerConn)
			}
		}
		add("RSS per idle relayed connection, "+p, "≤ 1 KiB", v, " B", 0, func(v float64) bool { return v <= 1024 }, "")
	}
	v, failed := nan(), 0
	for _, r := range res.Summary.Seed {
		if r.Target == TargetChain {
			v, failed = float64(r.VsDirect), r.Failed
		}
	}
	add("seed parallel curl, chain vs direct, no failures", "≥ 0.95×, 0 failed", v, "×", 2,
		func(v float64) bool { return v >= 0.95 && failed == 0 }, fmt.Sprintf(", %d failed", failed))
	for _, p := range ChainProcs {
		cpu, sw := nan(), nan()
		if qp, ok := quietProc(res, p); ok {
			cpu, sw = float64(qp.CPUPercent), float64(qp.SwitchesPerSec)
		}
		if math.IsNaN(sw) {
			cpu = nan() // half a measure is not measured
		}
		add("at rest (no client, standby pool full), "+p+": CPU and context switches",
			fmt.Sprintf("≤ %g%% of a core, ≤ %d/s", QuietMaxCPUPercent, QuietMaxSwitches), cpu, "%", 3,
			func(v float64) bool { return quietMet(v, sw) }, ", "+report.Num(sw, 1)+"/s")
	}
	return out
}

// connsOf is the summary row of target at concurrency c, or nil.
func connsOf(res *Results, target string, c int) *ConnsRow {
	for i := range res.Summary.Conns {
		if r := &res.Summary.Conns[i]; r.Target == target && r.Concurrency == c {
			return r
		}
	}
	return nil
}

// quietProc is p's figures of the quiet scenario, if it ran.
func quietProc(res *Results, p string) (QuietProc, bool) {
	if res.Quiet == nil {
		return QuietProc{}, false
	}
	qp, ok := res.Quiet.Procs[p]
	return qp, ok
}

// verdict is "met" or "missed" for a measured v, by ok, and "not measured" for NaN.
func verdict(v float64, ok func(float64) bool) string {
	switch {
	case math.IsNaN(v):
		return "not measured"
	case ok(v):
		return "met"
	}
	return "missed"
}

func fmtIf(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

package harness

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

func TestPlanFor(t *testing.T) {
	full, err := planFor(Options{Out: "x"})
	if err != nil || full.Mode != "full" || full.Reps != 5 || full.IdleConns != 9000 || full.SeedRequests != 2000 {
		t.Fatalf("full plan %+v, %v", full, err)
	}
	quick, err := planFor(Options{Out: "x", Quick: true})
	if err != nil || quick.Mode != "quick" || quick.Reps != 2 || quick.SeedRequests != 200 || quick.Deadline >= full.Deadline {
		t.Fatalf("quick plan %+v, %v", quick, err)
	}
	if p, err := planFor(Options{Out: "x", Reps: 3}); err != nil || p.Reps != 3 {
		t.Fatalf("-reps 3: %+v, %v", p, err)
	}
	for name, o := range map[string]Options{
		"unknown scenario": {Out: "x", Scenarios: []string{"conns", "latency"}},
		"bad profile":      {Out: "x", Profile: "heap"},
		"negative reps":    {Out: "x", Reps: -1},
		"too many reps":    {Out: "x", Reps: 51},
		"no out":           {},
	} {
		if _, err := planFor(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o := Options{Scenarios: []string{ScenarioBulk}}
	if !o.wants(ScenarioBulk) || o.wants(ScenarioConns) || !(Options{}).wants(ScenarioSeed) {
		t.Error("wants")
	}
}

func TestQuietIsSelectable(t *testing.T) {
	if !slices.Contains(AllScenarios, ScenarioQuiet) || ScenarioQuiet == ScenarioIdle {
		t.Fatalf("AllScenarios %v lacks %q beside %q", AllScenarios, ScenarioQuiet, ScenarioIdle)
	}
	o := Options{Out: "x", Scenarios: []string{ScenarioQuiet}}
	p, err := planFor(o)
	if err != nil {
		t.Fatalf("-scenarios quiet: %v", err)
	}
	if !o.wants(ScenarioQuiet) || o.wants(ScenarioIdle) || !(Options{}).wants(ScenarioQuiet) {
		t.Error("wants: quiet alone, or with everything")
	}
	if p.QuietSeconds != 30 {
		t.Errorf("full quiet window %v s, want 30", p.QuietSeconds)
	}
	if q, _ := planFor(Options{Out: "x", Quick: true}); q.QuietSeconds != 10 {
		t.Errorf("quick quiet window %v s, want 10", q.QuietSeconds)
	}
}

func TestQuietRates(t *testing.T) {
	// The targets' edges over a 30 s window: 60 ms of CPU is 0.2% of a core, 1,500 switches 50/s.
	qp := quietRates(60*time.Millisecond, 1500, 30*time.Second)
	if math.Abs(float64(qp.CPUPercent)-0.2) > 1e-9 || math.Abs(float64(qp.SwitchesPerSec)-50) > 1e-9 || qp.CPUms != 60 || qp.Switches != 1500 {
		t.Fatalf("quietRates = %+v; want 0.2%%, 50/s", qp)
	}
	if !quietMet(float64(qp.CPUPercent), float64(qp.SwitchesPerSec)) {
		t.Error("the targets' edges count as missed")
	}
	// A thread that exited took its count along: the switches are not measured, not negative.
	if qp := quietRates(0, -40, 30*time.Second); !math.IsNaN(float64(qp.SwitchesPerSec)) {
		t.Errorf("negative switch delta gave %v/s", qp.SwitchesPerSec)
	}
	if qp := quietRates(time.Second, 10, 0); !math.IsNaN(float64(qp.CPUPercent)) {
		t.Errorf("empty window gave %v%%", qp.CPUPercent)
	}
}

// quietFixture is a quiet run in which the public proxy meets both targets, the private proxy
// misses the CPU one, the private node the switches one, and HAProxy ran as a reference.
func quietFixture() *QuietPhase {
	return &QuietPhase{StandbyWaiting: 64, StandbyParked: 64, Steady: true, WaitSeconds: 2.4, Seconds: 30,
		Procs: map[string]QuietProc{
			chain.Public:     quietRates(30*time.Millisecond, 900, 30*time.Second),
			chain.Private:    quietRates(90*time.Millisecond, 390, 30*time.Second),
			chain.PublicEPS:  quietRates(0, 3, 30*time.Second),
			chain.PrivateEPS: quietRates(10*time.Millisecond, 1800, 30*time.Second),
			ProcHAProxyA:     quietRates(0, 60, 30*time.Second),
		}}
}

func TestQuietReport(t *testing.T) {
	res := &Results{Quiet: quietFixture()}
	summarize(res)
	md := Markdown(res)
	i := strings.Index(md, "### 5. Quiet")
	if i < 0 {
		t.Fatalf("no quiet table in\n%s", md)
	}
	section := md[i:]
	section = section[:strings.Index(section, "### Targets")]
	// process, CPU ms, % of one core, its verdict, switches, switches/s, its verdict
	want := map[string][]string{
		chain.Public:     {"30", "0.100", "met", "900", "30.0", "met"},
		chain.Private:    {"90", "0.300", "missed", "390", "13.0", "met"},
		chain.PublicEPS:  {"0", "0.000", "met", "3", "0.1", "met"},
		chain.PrivateEPS: {"10", "0.033", "met", "1800", "60.0", "missed"},
		ProcHAProxyA:     {"0", "0.000", "reference", "60", "2.0", "reference"},
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if _, ok := want[cells[0]]; ok {
			rows[cells[0]] = cells[1:]
		}
	}
	for p, w := range want {
		if !slices.Equal(rows[p], w) {
			t.Errorf("%s row %q, want %q", p, rows[p], w)
		}
	}
	if strings.Contains(section, ProcHAProxyB) {
		t.Error("a process that did not run has a row")
	}
	for _, s := range []string{"64 standby sockets", "≤ 0.2%", "≤ 50/s"} {
		if !strings.Contains(section, s) {
			t.Errorf("quiet table lacks %q:\n%s", s, section)
		}
	}
	verdict := map[string]string{}
	for _, c := range res.Targets {
		verdict[c.Name] = c.Verdict + " " + c.Measured
	}
	for p, w := range map[string]string{
		chain.Public:     "met 0.100%, 30.0/s",
		chain.Private:    "missed 0.300%, 13.0/s",
		chain.PublicEPS:  "met 0.000%, 0.1/s",
		chain.PrivateEPS: "missed 0.033%, 60.0/s",
	} {
		name := "at rest (no client, standby pool full), " + p + ": CPU and context switches"
		if verdict[name] != w {
			t.Errorf("%s: %q, want %q", name, verdict[name], w)
		}
	}
}

func TestFloatJSONHasNoNaN(t *testing.T) {
	b, err := json.Marshal(map[string]Float{"nan": Float(math.NaN()), "inf": Float(math.Inf(1)), "x": 1.5})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"inf":null,"nan":null,"x":1.5}` {
		t.Fatalf("got %s", b)
	}
}

func TestRotate(t *testing.T) {
	s := []string{"a", "b", "c"}
	if got := strings.Join(rotate(s, 4), ""); got != "bca" {
		t.Fatalf("rotate by 4 = %s", got)
	}
	if strings.Join(s, "") != "abc" {
		t.Fatal("rotate changed its input")
	}
	if len(rotate([]string(nil), 2)) != 0 {
		t.Fatal("rotate of nothing")
	}
}

// phases builds a connection scenario of three repetitions in which the chain does 80, 90
// and 70 % of direct's rate, with its CPU spread over the four processes.
func connsFixture() []ConnsPhase {
	var out []ConnsPhase
	chainRate := []float64{800, 900, 700}
	for rep := 1; rep <= 3; rep++ {
		direct := ConnsPhase{Rep: rep, Target: TargetDirect, Concurrency: 25, OK: 1000, ConnsPerSec: 1000, P50ms: 10, P99ms: 30,
			CPUPerConnUs: map[string]Float{chain.Internal: 500}}
		chain := ConnsPhase{Rep: rep, Target: TargetChain, Concurrency: 25, OK: 800, ConnsPerSec: chainRate[rep-1], P50ms: 10.5 + float64(rep)/10, P99ms: 40,
			CPUPerConnUs:    map[string]Float{chain.Public: 100, chain.Private: 100, chain.PublicEPS: 50, chain.PublicEPS + "x": 999, chain.PrivateEPS: Float(40 + 10*rep), chain.Internal: 520},
			SwitchesPerConn: map[string]Float{chain.Public: 3, chain.Private: Float(rep), chain.Internal: 5}}
		out = append(out, direct, chain)
	}
	return out
}

func TestSummarizeAndChecks(t *testing.T) {
	res := &Results{Conns: connsFixture()}
	res.Conns = append(res.Conns, ConnsPhase{Rep: 1, Target: TargetChain, Concurrency: 1, OK: 100, ConnsPerSec: 300, P50ms: 3})
	res.Conns = append(res.Conns, ConnsPhase{Rep: 1, Target: TargetDirect, Concurrency: 1, OK: 100, ConnsPerSec: 400, P50ms: 2.5})
	for rep := 1; rep <= 2; rep++ {
		for _, dir := range []string{"up", "down"} {
			res.Bulk = append(res.Bulk,
				BulkPhase{Rep: rep, Target: TargetDirect, Transport: "raw", Direction: dir, Streams: 1, Bytes: 4e9, MBps: 4000},
				BulkPhase{Rep: rep, Target: TargetChain, Transport: "raw", Direction: dir, Streams: 1, Bytes: 1e9, MBps: 1000 * float64(rep),
					CPUPerGiB: map[string]Float{chain.Public: 0.5, chain.Private: map[string]Float{"up": 0.6, "down": 0.8}[dir]}})
		}
	}
	res.Idle = []IdlePhase{{Target: TargetChain, Held: 9000, Procs: map[string]IdleProc{
		chain.Public: {RSSPerConn: 900}, chain.Private: {RSSPerConn: 1500}}}}
	res.Seed = []SeedPhase{
		{Rep: 1, Target: TargetChain, Requests: 200, OK: 199, Failed: 1, ReqPerSec: 99},
		{Rep: 1, Target: TargetDirect, Requests: 200, OK: 200, ReqPerSec: 100},
	}
	summarize(res)

	var row *ConnsRow
	for i := range res.Summary.Conns {
		if r := &res.Summary.Conns[i]; r.Target == TargetChain && r.Concurrency == 25 {
			row = r
		}
	}
	if row == nil || row.Reps != 3 {
		t.Fatalf("no chain row at c=25: %+v", res.Summary.Conns)
	}
	if row.ConnsPerSec != 800 || math.Abs(float64(row.VsDirect)-0.8) > 1e-9 {
		t.Errorf("chain c=25: %v conns/s, %v× direct; want 800, 0.80", row.ConnsPerSec, row.VsDirect)
	}
	// Proxy CPU sums the four chain processes only (not the internal server, not unknown names).
	if row.ProxyCPUPerConnUs != 310 {
		t.Errorf("proxy CPU per conn %v, want 100+100+50+60 = 310", row.ProxyCPUPerConnUs)
	}
	// Switches likewise: the chain's processes, median over the repetitions (3+1, 3+2, 3+3).
	if row.ProxySwitchesPerConn != 5 {
		t.Errorf("proxy switches per conn %v, want 5", row.ProxySwitchesPerConn)
	}
	if math.Abs(float64(row.AddedP50ms)-0.7) > 1e-9 {
		t.Errorf("added p50 %v, want 0.7", row.AddedP50ms)
	}
	verdict := map[string]string{}
	for _, c := range res.Targets {
		verdict[c.Name] = c.Verdict + " " + c.Measured
	}
	want := map[string]string{
		"new connections/s at c=25, chain vs direct":                              "met 0.80×",
		"added p50 latency at c=1":                                                "met 0.50 ms",
		"CPU per new connection, the four chain processes (c=25)":                 "met 310 µs",
		"raw TCP bulk, one stream up, chain vs direct":                            "met 0.38×",
		"relay CPU per GiB, private-proxy (raw TCP, one stream, worse direction)": "missed 0.800 s (down)",
		"relay CPU per GiB, public-proxy (raw TCP, one stream, worse direction)":  "met 0.500 s (up)",
		"RSS per idle relayed connection, public-proxy":                           "met 900 B",
		"RSS per idle relayed connection, private-proxy":                          "missed 1500 B",
		"seed parallel curl, chain vs direct, no failures":                        "missed 0.99×, 1 failed",
	}
	for name, w := range want {
		if verdict[name] != w {
			t.Errorf("%s: %q, want %q", name, verdict[name], w)
		}
	}
	md := Markdown(res)
	for _, s := range []string{"### 1. New connections", "### 2. Bulk", "### 3. Idle", "### 4. The seed", "| chain", "missed"} {
		if !strings.Contains(md, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("results do not encode: %v", err)
	}
}

// The budget table adds the load generator, the internal server and the proxies per target, and
// predicts × direct from the totals: direct 400 + 500 = 900 µs, the chain 450 + 520 + 310 = 1,280,
// so 0.70×; the chain's proxies could have 900/0.8 − 970 = 155 µs for 0.80×.
func TestBudgetTable(t *testing.T) {
	res := &Results{Conns: connsFixture()}
	for i := range res.Conns {
		res.Conns[i].CPUPerConnUs[ProcHarness] = map[string]Float{TargetDirect: 400, TargetChain: 450}[res.Conns[i].Target]
	}
	summarize(res)
	tb, ok := budgetTable(res, 25)
	if !ok {
		t.Fatal("no budget table with direct measured at c=25")
	}
	rows := map[string][]string{}
	for _, r := range tb.Rows {
		rows[r[0]] = r
	}
	if got, want := rows[TargetDirect], []string{TargetDirect, "400", "500", "0", "900", "1.00×", ""}; !slices.Equal(got, want) {
		t.Errorf("direct row %q, want %q", got, want)
	}
	if got, want := rows[TargetChain], []string{TargetChain, "450", "520", "310", "1280", "0.70×", "0.80×"}; !slices.Equal(got, want) {
		t.Errorf("chain row %q, want %q", got, want)
	}
	if n := strings.Join(tb.Notes, " "); !strings.Contains(n, "(970 µs), its four processes would have 155 µs") {
		t.Errorf("notes %q lack the chain's budget for 0.80×", n)
	}
	if _, ok := budgetTable(res, 1); ok {
		t.Error("a budget table at c=1, where direct was not measured")
	}
}

// The seed's CPU table: per request answered, direct's machine took (7000+7200)/2 = 7,100 ms over
// 100 requests = 71 ms; the chain's proxies 1.5+1.0+0.1 ms (the internal server not counted
// among them), so the proxies' CPU predicts 71/73.6 = 0.96× while the run measured 0.90×.
func TestSeedCPUTable(t *testing.T) {
	chainCPU := map[string]float64{chain.Public: 150, chain.Private: 100, chain.PublicEPS: 10, chain.Internal: 200}
	res := &Results{Seed: []SeedPhase{
		{Rep: 1, Target: TargetChain, Requests: 100, OK: 100, ReqPerSec: 27, MachineCPUms: 7700, CPUms: chainCPU,
			Switches: map[string]int64{chain.Public: 2000, chain.Private: 1200, chain.Internal: 5000}},
		{Rep: 1, Target: TargetDirect, Requests: 100, OK: 100, ReqPerSec: 30, MachineCPUms: 7000, CPUms: map[string]float64{chain.Internal: 190}},
		{Rep: 2, Target: TargetDirect, Requests: 100, OK: 100, ReqPerSec: 30, MachineCPUms: 7200, CPUms: map[string]float64{chain.Internal: 190}},
	}}
	summarize(res)
	tb, ok := seedCPUTable(res)
	if !ok {
		t.Fatal("no seed CPU table with direct measured")
	}
	rows := map[string][]string{}
	for _, r := range tb.Rows {
		rows[r[0]] = r
	}
	// machine 77 ms; proxies 2.6; 32 switches (the internal server's not among them); internal 2;
	// the rest 77 - 2.6 - 2 = 72.4 (the harness, not read here, counts 0).
	if got, want := rows[TargetChain], []string{TargetChain, "77.0", "2.60", "32.0", "2.00", "72.4", "0.96×", "0.90×"}; !slices.Equal(got, want) {
		t.Errorf("chain row %q, want %q", got, want)
	}
	if got, want := rows[TargetDirect], []string{TargetDirect, "71.0", "0.00", "–", "1.90", "69.1", "", ""}; !slices.Equal(got, want) {
		t.Errorf("direct row %q, want %q", got, want)
	}
	old := &Results{Seed: []SeedPhase{{Rep: 1, Target: TargetDirect, Requests: 100, OK: 100, ReqPerSec: 30}}}
	summarize(old)
	if _, ok := seedCPUTable(old); ok {
		t.Error("a seed CPU table from phases with no machine figure")
	}
}

func TestChecksWithNothingMeasured(t *testing.T) {
	res := &Results{}
	summarize(res)
	if len(res.Targets) == 0 {
		t.Fatal("no targets listed")
	}
	for _, c := range res.Targets {
		if c.Verdict != "not measured" || c.Measured != "–" {
			t.Errorf("%s: %q %q with no data", c.Name, c.Verdict, c.Measured)
		}
	}
}

func TestSeedCommandIsTheSeeds(t *testing.T) {
	got := seedCommand(2000, 25, "/tmp/x y/root.crt", "4433")
	want := `seq 1 2000 | parallel -j 25 curl -s -o /dev/null -w '%{http_code}\\n' --cacert '/tmp/x y/root.crt' ` +
		`--resolve test.internal-server.local:4433:127.0.0.1 https://test.internal-server.local:4433/jsonrpc --data '{}'`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRenderRoundTrip(t *testing.T) {
	res := &Results{Mode: "quick", Conns: connsFixture()}
	res.Idle = []IdlePhase{{Target: TargetChain, Held: 10, Procs: map[string]IdleProc{
		chain.Public: {RSSPerConn: 900, GoroutinesPerConn: Float(math.NaN())}}}}
	res.Quiet = quietFixture()
	res.Quiet.Procs[chain.PublicEPS] = quietRates(0, -1, 30*time.Second) // not measured: null
	summarize(res)
	first := t.TempDir()
	var out strings.Builder
	if err := write(Options{Out: first, Stdout: &out}, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "table.md", "chart.png"} {
		if _, err := os.Stat(filepath.Join(first, f)); err != nil {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
	second := t.TempDir()
	var again strings.Builder
	if err := Render(Options{Out: second, Stdout: &again}, filepath.Join(first, "results.json")); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(first, "table.md"))
	b, _ := os.ReadFile(filepath.Join(second, "table.md"))
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("re-rendered report differs:\n%s\n---\n%s", a, b)
	}
	if err := Render(Options{Out: second}, filepath.Join(first, "missing.json")); err == nil {
		t.Fatal("missing results file: no error")
	}
}

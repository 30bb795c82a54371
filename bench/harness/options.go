package harness

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"epsproxy/internal/chain"
)

// Scenario names, as given to Options.Scenarios.
const (
	ScenarioConns = "conns" // new TLS connections at several concurrencies
	ScenarioBulk  = "bulk"  // bulk streams, TLS and raw TCP, each way
	ScenarioIdle  = "idle"  // thousands of idle relayed connections held
	ScenarioSeed  = "seed"  // the README's `parallel -j 25 curl` stress test
	ScenarioQuiet = "quiet" // no client, standby pools full: each process's CPU and switches
)

// AllScenarios lists every scenario in report order.
var AllScenarios = []string{ScenarioConns, ScenarioBulk, ScenarioIdle, ScenarioSeed, ScenarioQuiet}

// ProfileKinds are the profiles the public proxy can write (internal/daemon's --profile).
var ProfileKinds = []string{"cpu", "mem", "block", "mutex", "goroutine"}

// Options configure one run.
type Options struct {
	Quick     bool     // the short run (well under two minutes)
	Scenarios []string // subset of AllScenarios; empty: all
	Reps      int      // repetitions per scenario (0: 5 full, 2 quick); idle and quiet run once
	Out       string   // output directory (created): results.json, chart.png, table.md, logs/
	// Profile, when set, makes ProfileProc (the public proxy by default, or the private proxy)
	// write that profile of the connection scenario into Out/profile/.
	Profile     string
	ProfileProc string
	// NoHAProxy skips HAProxy even where it is installed; otherwise it is used, and installed
	// with apt-get when missing and running as root.
	NoHAProxy bool
	// Syscalls adds the syscall count to the connection scenario: perf stat counts the system
	// calls of each proxy process over a further, untimed phase per target.
	Syscalls bool
	Root     string    // repository root (go.mod); empty: found from the working directory
	Stdout   io.Writer // the report
	Log      io.Writer // progress lines
}

// Plan is the size of a run, fixed by the mode.
type Plan struct {
	Mode              string  `json:"mode"`
	Reps              int     `json:"reps"`
	Concurrency       []int   `json:"concurrency"`
	ConnSeconds       float64 `json:"conn_seconds"`
	BulkWarmupSeconds float64 `json:"bulk_warmup_seconds"`
	BulkWindowSeconds float64 `json:"bulk_window_seconds"`
	Streams           []int   `json:"streams"`
	IdleConns         int     `json:"idle_conns"`
	IdleRate          int     `json:"idle_rate_per_second"`
	IdleSettleSeconds float64 `json:"idle_settle_seconds"`
	SeedRequests      int     `json:"seed_requests"`
	SeedParallel      int     `json:"seed_parallel"`
	QuietSeconds      float64 `json:"quiet_seconds"`
	// PauseSeconds separates phases, so one phase's closing connections do not overlap the next.
	PauseSeconds float64       `json:"pause_seconds"`
	Deadline     time.Duration `json:"-"`
}

func (p Plan) connDuration() time.Duration { return secs(p.ConnSeconds) }
func secs(s float64) time.Duration         { return time.Duration(s * float64(time.Second)) }

// planFor checks o and returns the plan of its mode.
func planFor(o Options) (Plan, error) {
	p := Plan{
		Mode: "full", Reps: 5, Concurrency: []int{1, 25, 100}, ConnSeconds: 3,
		BulkWarmupSeconds: 0.4, BulkWindowSeconds: 1.5, Streams: []int{1, 8},
		// 9,000 relayed connections: a relaying proxy holds two fds each, under a hard limit of
		// 20,000 per process. The rate stays under the dev public rate limit (2,000/s per IP).
		IdleConns: 9000, IdleRate: 1000, IdleSettleSeconds: 3,
		SeedRequests: 2000, SeedParallel: 25, QuietSeconds: 30, PauseSeconds: 0.1, Deadline: 40 * time.Minute,
	}
	if o.Quick {
		p.Mode, p.Reps, p.ConnSeconds = "quick", 2, 0.8
		p.BulkWarmupSeconds, p.BulkWindowSeconds = 0.1, 0.3
		p.IdleConns, p.IdleSettleSeconds = 1500, 1
		p.SeedRequests, p.QuietSeconds, p.PauseSeconds, p.Deadline = 200, 10, 0.05, 5*time.Minute
	}
	if o.Reps != 0 {
		if o.Reps < 1 || o.Reps > 50 {
			return Plan{}, fmt.Errorf("-reps %d: want 1 to 50", o.Reps)
		}
		p.Reps = o.Reps
	}
	for _, s := range o.Scenarios {
		if !slices.Contains(AllScenarios, s) {
			return Plan{}, fmt.Errorf("scenario %q: want some of %s", s, strings.Join(AllScenarios, ","))
		}
	}
	if o.Profile != "" && !slices.Contains(ProfileKinds, o.Profile) {
		return Plan{}, fmt.Errorf("-profile %q: want one of %s", o.Profile, strings.Join(ProfileKinds, ", "))
	}
	if o.ProfileProc != "" && o.ProfileProc != chain.Public && o.ProfileProc != chain.Private {
		return Plan{}, fmt.Errorf("-profile-proc %q: want %s or %s", o.ProfileProc, chain.Public, chain.Private)
	}
	if o.Out == "" {
		return Plan{}, fmt.Errorf("no output directory")
	}
	return p, nil
}

// wants reports whether scenario s is selected.
func (o Options) wants(s string) bool {
	return len(o.Scenarios) == 0 || slices.Contains(o.Scenarios, s)
}

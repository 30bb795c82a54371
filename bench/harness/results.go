package harness

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"epsproxy/internal/proc"
)

// Float is a float64 that encodes NaN and infinities (figures that could not be measured) as
// JSON null instead of failing the whole file.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', 6, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler: null reads back as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Results is everything one run measured; results.json is this value.
type Results struct {
	Mode         string       `json:"mode"`
	Plan         Plan         `json:"plan"`
	Command      string       `json:"command"`
	Started      time.Time    `json:"started"`
	Finished     time.Time    `json:"finished"`
	Machine      proc.Machine `json:"machine"`
	LoadAvgStart string       `json:"loadavg_start"`
	LoadAvgEnd   string       `json:"loadavg_end"`
	HAProxy      string       `json:"haproxy"` // version, or why it was skipped
	// Skipped holds one line per scenario or comparison that did not run, with the reason.
	Skipped []string `json:"skipped,omitempty"`
	// Processes maps each watched process to what it is.
	Processes map[string]string `json:"processes"`

	Conns []ConnsPhase `json:"conns,omitempty"`
	Bulk  []BulkPhase  `json:"bulk,omitempty"`
	Idle  []IdlePhase  `json:"idle,omitempty"`
	Seed  []SeedPhase  `json:"seed,omitempty"`
	Quiet *QuietPhase  `json:"quiet,omitempty"`
	// Syscalls is the syscall count (Options.Syscalls), and SyscallNs what one getppid(2) took.
	Syscalls  []SyscallCount `json:"syscalls,omitempty"`
	SyscallNs Float          `json:"syscall_ns,omitempty"`
	// Admin holds the proxies' /debug/stats after each scenario, for diagnosis.
	Admin map[string]json.RawMessage `json:"admin_stats,omitempty"`

	Summary Summary `json:"summary"`
	Targets []Check `json:"targets"`
	Profile string  `json:"profile,omitempty"` // the pprof command for the profile written
}

// ConnsPhase is one target at one concurrency in one repetition of the connection scenario.
type ConnsPhase struct {
	Rep         int     `json:"rep"`
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	ConnsPerSec float64 `json:"conns_per_sec"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	// CPUus is each watched process's CPU time during the phase, in microseconds.
	CPUus map[string]float64 `json:"cpu_us"`
	// CPUPerConnUs is CPUus divided by OK connections.
	CPUPerConnUs map[string]Float `json:"cpu_per_conn_us"`
	// SwitchesPerConn is each watched process's context switches (every thread, voluntary and
	// not) during the phase, divided by OK connections: its wake-ups per connection.
	SwitchesPerConn map[string]Float `json:"switches_per_conn,omitempty"`
}

// BulkPhase is one target, transport, direction and stream count in one repetition.
type BulkPhase struct {
	Rep       int     `json:"rep"`
	Target    string  `json:"target"`
	Transport string  `json:"transport"` // tls or raw
	Direction string  `json:"direction"` // up (client to server) or down
	Streams   int     `json:"streams"`
	Bytes     int64   `json:"bytes"` // counted at the receiver over the window
	Seconds   float64 `json:"seconds"`
	MBps      float64 `json:"mb_per_sec"` // 10^6 bytes per second
	Error     string  `json:"error,omitempty"`
	// CPUs is each watched process's CPU time during the window, in seconds.
	CPUs map[string]float64 `json:"cpu_s"`
	// CPUPerGiB is CPUs divided by the GiB moved.
	CPUPerGiB map[string]Float `json:"cpu_s_per_gib"`
}

// IdlePhase is one target holding idle connections.
type IdlePhase struct {
	Target       string              `json:"target"`
	Wanted       int                 `json:"wanted"`
	Held         int                 `json:"held"`
	Failed       int                 `json:"failed"`
	FirstError   string              `json:"first_error,omitempty"`
	SetupSeconds float64             `json:"setup_seconds"`
	Procs        map[string]IdleProc `json:"procs"`
}

// IdleProc is one process before and while holding the connections.
type IdleProc struct {
	RSSBefore int64 `json:"rss_before_bytes"`
	RSSAfter  int64 `json:"rss_after_bytes"`
	FDsBefore int   `json:"fds_before"`
	FDsAfter  int   `json:"fds_after"`
	// Goroutines are -1 for processes without /debug/stats (HAProxy).
	GoroutinesBefore  int   `json:"goroutines_before"`
	GoroutinesAfter   int   `json:"goroutines_after"`
	RSSPerConn        Float `json:"rss_per_conn_bytes"`
	FDsPerConn        Float `json:"fds_per_conn"`
	GoroutinesPerConn Float `json:"goroutines_per_conn"`
}

// SeedPhase is one run of the README's stress test against one target.
type SeedPhase struct {
	Rep       int            `json:"rep"`
	Target    string         `json:"target"`
	Requests  int            `json:"requests"`
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Codes     map[string]int `json:"codes"`
	Seconds   float64        `json:"seconds"`
	ReqPerSec float64        `json:"req_per_sec"`
	Error     string         `json:"error,omitempty"`
	Command   string         `json:"command"`
	// MachineCPUms is the whole machine's busy CPU time over the phase (/proc/stat: the load
	// generator's parallel and curl processes are in it), CPUms and Switches each watched
	// process's CPU time and context switches.
	MachineCPUms float64            `json:"machine_cpu_ms"`
	CPUms        map[string]float64 `json:"cpu_ms"`
	Switches     map[string]int64   `json:"switches"`
}

// QuietPhase is the chain at rest: no client, the standby pool full, over one window.
type QuietPhase struct {
	// StandbyWaiting is the private proxy's standby sockets and StandbyParked the public proxy's
	// parked ones when the window began; Steady is false when they had not settled within the
	// bounded wait (the window was measured anyway).
	StandbyWaiting int     `json:"standby_waiting"`
	StandbyParked  int     `json:"standby_parked"`
	Steady         bool    `json:"standby_steady"`
	WaitSeconds    float64 `json:"wait_seconds"`
	Seconds        float64 `json:"seconds"` // the window
	// Procs holds the chain's four processes and, when it runs, HAProxy's (for reference).
	Procs map[string]QuietProc `json:"procs"`
}

// QuietProc is one process over the quiet window: its CPU time (/proc/PID/stat) and context
// switches (every thread's, /proc/PID/task/*/status), and both per second of the window.
type QuietProc struct {
	CPUms          float64 `json:"cpu_ms"`
	Switches       int64   `json:"switches"`
	CPUPercent     Float   `json:"cpu_percent_of_core"`
	SwitchesPerSec Float   `json:"switches_per_sec"`
}

// Check is one target of BENCHMARKS.md's targets and what this run measured for it.
type Check struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Value    Float  `json:"value"`
	// Verdict is "met", "missed" or "not measured".
	Verdict string `json:"verdict"`
}

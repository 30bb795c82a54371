package harness

import (
	"context"
	"fmt"
	"math"
	"time"

	"epsproxy/internal/chain"
	"epsproxy/internal/proc"
)

// Targets of the quiet scenario, per process of the chain (from the performance issue).
const (
	QuietMaxCPUPercent = 0.2 // % of one core
	QuietMaxSwitches   = 50  // context switches per second, every thread
)

// Bounds of the wait for the standby pool.
const (
	standbyWait   = 60 * time.Second       // at most, then measure anyway and say so
	standbySteady = 2 * time.Second        // the counts unchanged this long: the pool is full
	standbyPoll   = 200 * time.Millisecond // between two /debug/stats reads
)

// quietRefs are measured at rest beside the chain, for reference only: HAProxy, when it runs.
var quietRefs = []string{ProcHAProxyA, ProcHAProxyB}

// runQuiet is scenario 5: the chain with no client and its standby pool full. Once the private
// proxy's standby sockets are all parked at the public proxy, it reads each process's CPU time
// and context switches from /proc, waits the window without touching anything (a /debug/stats
// read would wake the proxies it measures), and reads them again. It runs first, before any
// load has grown the processes' heaps or left work for their runtimes.
func (e *env) runQuiet(ctx context.Context) error {
	ph := QuietPhase{Procs: map[string]QuietProc{}}
	start := time.Now()
	var err error
	if ph.StandbyWaiting, ph.StandbyParked, ph.Steady, err = e.waitStandby(ctx); err != nil {
		return err
	}
	ph.WaitSeconds = time.Since(start).Seconds()
	if !ph.Steady {
		e.logf("quiet: the standby pool did not settle in %v (%d waiting, %d parked); measuring anyway",
			standbyWait, ph.StandbyWaiting, ph.StandbyParked)
	}
	procs := append([]string(nil), ChainProcs...)
	for _, p := range quietRefs {
		if e.pids[p] != nil {
			procs = append(procs, p)
		}
	}
	before, err := e.restSnapshot(procs)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := sleep(ctx, secs(e.plan.QuietSeconds)); err != nil {
		return err
	}
	after, err := e.restSnapshot(procs)
	if err != nil {
		return err
	}
	window := time.Since(t0)
	ph.Seconds = window.Seconds()
	for _, p := range procs {
		qp := quietRates(after[p].cpu-before[p].cpu, after[p].switches-before[p].switches, window)
		ph.Procs[p] = qp
		e.logf("quiet %-13s %5.0f ms CPU (%s%% of a core), %6d switches (%s/s) in %.1f s",
			p, qp.CPUms, num(qp.CPUPercent, 3), qp.Switches, num(qp.SwitchesPerSec, 1), ph.Seconds)
	}
	e.res.Quiet = &ph
	return nil
}

// rest is what restSnapshot reads of one process.
type rest struct {
	cpu      time.Duration
	switches int64
}

// restSnapshot reads the CPU time and context switches of procs from /proc only.
func (e *env) restSnapshot(procs []string) (map[string]rest, error) {
	out := make(map[string]rest, len(procs))
	for _, p := range procs {
		pid := e.pids[p]()
		cpu, err := proc.ReadCPU(pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		sw, err := proc.ReadSwitches(pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[p] = rest{cpu: cpu, switches: sw}
	}
	return out, nil
}

// quietRates turns one process's deltas over the window into the reported figures. A negative
// switch count (a thread exited and took its count along) is not measured.
func quietRates(cpu time.Duration, switches int64, window time.Duration) QuietProc {
	qp := QuietProc{CPUms: ms(cpu), Switches: switches,
		CPUPercent:     Float(100 * div(cpu.Seconds(), window.Seconds())),
		SwitchesPerSec: Float(div(float64(switches), window.Seconds()))}
	if switches < 0 {
		qp.SwitchesPerSec = Float(math.NaN())
	}
	return qp
}

// waitStandby polls the private proxy's StandbyWaiting and the public proxy's StandbyParked
// until they are equal, above zero and unchanged for standbySteady (the pool is full at the size
// the settings give it), or standbyWait has passed. It returns the last counts and whether they
// had settled.
func (e *env) waitStandby(ctx context.Context) (waiting, parked int, steady bool, err error) {
	deadline := time.Now().Add(standbyWait)
	since := time.Now()
	waiting, parked = -1, -1
	for {
		pr, err := e.ch.Stats(ctx, chain.Private)
		if err != nil {
			return 0, 0, false, err
		}
		pu, err := e.ch.Stats(ctx, chain.Public)
		if err != nil {
			return 0, 0, false, err
		}
		w, okW := pr.Counters["StandbyWaiting"]
		p, okP := pu.Counters["StandbyParked"]
		if !okW || !okP {
			return 0, 0, false, fmt.Errorf("no StandbyWaiting in the %s's /debug/stats or no StandbyParked in the %s's", chain.Private, chain.Public)
		}
		if int(w) != waiting || int(p) != parked || w == 0 || w != p {
			since = time.Now()
		}
		waiting, parked = int(w), int(p)
		if time.Since(since) >= standbySteady {
			return waiting, parked, true, nil
		}
		if time.Now().After(deadline) {
			return waiting, parked, false, nil
		}
		if err := sleep(ctx, standbyPoll); err != nil {
			return waiting, parked, false, err
		}
	}
}

// quietMet reports whether a process at rest is within both targets.
func quietMet(cpuPercent, switchesPerSec float64) bool {
	return cpuPercent <= QuietMaxCPUPercent && switchesPerSec <= QuietMaxSwitches
}

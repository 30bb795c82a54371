package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"epsproxy/bench/load"
	"epsproxy/internal/chain"
)

// connTimeout bounds one connection of the connection scenario.
const connTimeout = 10 * time.Second

// runConns is scenario 1: new TLS connections, one GET each, at each concurrency, every target
// interleaved within a repetition.
func (e *env) runConns(ctx context.Context) error {
	if e.o.Profile != "" {
		dir := filepath.Join(e.out, "profile")
		_ = os.MkdirAll(dir, 0o755)
		_ = os.Remove(filepath.Join(dir, e.o.Profile+".pprof"))
		e.logf("restarting the %s with PROFILE=%s for the connection scenario", e.profileProc(), e.o.Profile)
		if err := e.restartProxy(ctx, e.profileProc(), "PROFILE="+e.o.Profile, "PROFILE_DIR="+dir); err != nil {
			return err
		}
		defer e.finishProfile(ctx, dir)
	}
	req := load.Request(chain.Domain, "/jsonrpc", true)
	// Warm every path (runtime heaps, the EPS nodes' connections) outside the figures.
	for _, t := range e.targets {
		if _, err := load.RunConns(ctx, load.ConnsConfig{Addr: t.tlsAddr, TLS: e.connTLS, Request: req,
			Concurrency: 4, Duration: e.plan.connDuration() / 3, Timeout: connTimeout}); err != nil {
			return err
		}
	}
	for rep := range e.plan.Reps {
		for ci, c := range e.plan.Concurrency {
			for _, t := range rotate(e.targets, rep+ci) {
				if err := ctx.Err(); err != nil {
					return err
				}
				before, beforeSw := e.cpuSnapshot(), e.switchSnapshot()
				r, err := load.RunConns(ctx, load.ConnsConfig{Addr: t.tlsAddr, TLS: e.connTLS, Request: req,
					Concurrency: c, Duration: e.plan.connDuration(), Timeout: connTimeout})
				if err != nil {
					return err
				}
				cpu, sw := delta(before, e.cpuSnapshot()), delta(beforeSw, e.switchSnapshot())
				lat := r.Latency()
				ph := ConnsPhase{
					Rep: rep + 1, Target: t.name, Concurrency: c, OK: r.OK, Errors: r.Errors, FirstError: r.FirstError,
					Seconds: r.Elapsed.Seconds(), ConnsPerSec: r.Rate(),
					P50ms: ms(lat.P50), P90ms: ms(lat.P90), P99ms: ms(lat.P99), MaxMs: ms(lat.Max),
					CPUus: map[string]float64{}, CPUPerConnUs: map[string]Float{}, SwitchesPerConn: map[string]Float{},
				}
				for n, d := range cpu {
					us := float64(d) / float64(time.Microsecond)
					ph.CPUus[n] = us
					ph.CPUPerConnUs[n] = Float(div(us, float64(r.OK)))
				}
				for n, d := range sw {
					ph.SwitchesPerConn[n] = Float(div(float64(d), float64(r.OK)))
				}
				e.res.Conns = append(e.res.Conns, ph)
				e.logf("conns rep %d/%d c=%-3d %-13s %7.0f conns/s  p50 %6.2f ms  p99 %7.2f ms  errors %d %s",
					rep+1, e.plan.Reps, c, t.name, ph.ConnsPerSec, ph.P50ms, ph.P99ms, ph.Errors, ph.FirstError)
				if err := sleep(ctx, secs(e.plan.PauseSeconds)); err != nil {
					return err
				}
			}
		}
	}
	e.saveAdmin(ctx, "after-conns")
	if e.o.Syscalls {
		return e.countSyscalls(ctx, req)
	}
	return nil
}

// profileProc is the process the profile switch goes to.
func (e *env) profileProc() string {
	if e.o.ProfileProc == "" {
		return chain.Public
	}
	return e.o.ProfileProc
}

// finishProfile restarts the profiled proxy without the profile switch; stopping it writes the
// profile.
func (e *env) finishProfile(ctx context.Context, dir string) {
	if err := e.restartProxy(ctx, e.profileProc()); err != nil {
		e.logf("restarting the %s after profiling: %v", e.profileProc(), err)
	}
	file := filepath.Join(dir, e.o.Profile+".pprof")
	if _, err := os.Stat(file); err != nil {
		e.logf("no profile at %s: %v", file, err)
		return
	}
	e.res.Profile = fmt.Sprintf("go tool pprof -top %s %s", filepath.Join(e.bin, "proxy"), file)
	e.logf("%s %s profile of the connection scenario: %s", e.profileProc(), e.o.Profile, e.res.Profile)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// div is a/b, or NaN (reported as "not measured") when b is 0.
func div(a, b float64) float64 {
	if b == 0 {
		return nan()
	}
	return a / b
}

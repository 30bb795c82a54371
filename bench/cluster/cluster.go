// Package cluster is the scale-out benchmark: a real redis-server and the cluster chain of make
// demo-cluster (internal/chain.NewCluster), new TLS connections (one GET each) sent through one
// public proxy instance and through both, interleaved in every repetition, with the CPU each
// process spent per connection and the commands Redis ran per connection. It owns the processes
// it starts and stops them all; it must not touch the repository's settings or other processes.
package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"epsproxy/bench/load"
	"epsproxy/internal/chain"
	"epsproxy/internal/proc"
	"epsproxy/internal/redisproc"
)

// Options of one run.
type Options struct {
	Root        string        // repository root
	Reps        int           // repetitions, each with both modes
	Duration    time.Duration // per phase
	Concurrency int           // client goroutines in all (split over the instances in "two")
	Log         io.Writer     // progress
}

// Phase is one measured run.
type Phase struct {
	Rep          int
	Mode         string // "one": every client through instance A; "two": half through each
	OK, Errors   int
	ConnsPerSec  float64
	CPUPerConn   map[string]time.Duration // by process
	RedisPerConn float64
}

// Run starts everything, measures, stops everything, and returns the phases.
func Run(ctx context.Context, o Options) ([]Phase, error) {
	work, err := os.MkdirTemp("", "epsproxy-cluster-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "bin")
	logf(o.Log, "building the commands")
	if err := chain.Build(o.Root, bin); err != nil {
		return nil, err
	}
	rdir := filepath.Join(work, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, err
	}
	raddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	rs, err := redisproc.Start(raddr, rdir)
	if err != nil {
		return nil, err
	}
	defer rs.Kill()
	c, err := chain.NewCluster(o.Root, filepath.Join(work, "chain"), bin, freeAddr, raddr)
	if err != nil {
		return nil, err
	}
	if err := c.StartAll(); err != nil {
		return nil, err
	}
	defer c.StopAll(10 * time.Second)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.WaitReady(wctx); err != nil {
		return nil, err
	}
	tlsc := &tls.Config{RootCAs: c.Roots, ServerName: chain.Domain}
	req := load.Request(chain.Domain, "/jsonrpc", true)
	run := func(addrs []string, d time.Duration) (load.ConnsResult, error) {
		var (
			mu  sync.Mutex
			sum load.ConnsResult
			wg  sync.WaitGroup
			ers []error
		)
		for i, a := range addrs {
			conc := o.Concurrency / len(addrs)
			if i < o.Concurrency%len(addrs) {
				conc++
			}
			wg.Go(func() {
				r, err := load.RunConns(ctx, load.ConnsConfig{Addr: a, TLS: tlsc, Request: req, Concurrency: conc, Duration: d, Timeout: 10 * time.Second})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					ers = append(ers, err)
				}
				sum.OK += r.OK
				sum.Errors += r.Errors
				sum.Elapsed = max(sum.Elapsed, r.Elapsed)
			})
		}
		wg.Wait()
		if len(ers) > 0 {
			return sum, ers[0]
		}
		return sum, nil
	}
	modes := map[string][]string{"one": {c.Ports.PublicTLS}, "two": {c.Ports.PublicTLS, c.Ports.PublicTLSB}}
	logf(o.Log, "warming both instances")
	if _, err := run(modes["two"], o.Duration/2); err != nil {
		return nil, err
	}
	procs := slices.Concat(chain.ClusterAll, []string{"redis"})
	pid := func(n string) int {
		if n == "redis" {
			return rs.Pid()
		}
		return c.Pid(n)
	}
	cpu := func() map[string]time.Duration {
		out := map[string]time.Duration{}
		for _, n := range procs {
			if d, err := proc.ReadCPU(pid(n)); err == nil {
				out[n] = d
			}
		}
		return out
	}
	var phases []Phase
	for rep := range o.Reps {
		order := []string{"one", "two"}
		if rep%2 == 1 {
			order = []string{"two", "one"}
		}
		for _, mode := range order {
			before, calls0 := cpu(), must(rs.Calls())
			r, err := run(modes[mode], o.Duration)
			if err != nil {
				return phases, err
			}
			after, calls1 := cpu(), must(rs.Calls())
			ph := Phase{Rep: rep + 1, Mode: mode, OK: r.OK, Errors: r.Errors, ConnsPerSec: r.Rate(), CPUPerConn: map[string]time.Duration{}}
			if r.OK > 0 {
				for n, a := range after {
					ph.CPUPerConn[n] = (a - before[n]) / time.Duration(r.OK)
				}
				ph.RedisPerConn = float64(calls1-calls0) / float64(r.OK)
			}
			phases = append(phases, ph)
			logf(o.Log, "rep %d %-3s %7.0f conns/s  errors %d  redis commands per conn %.4f", ph.Rep, mode, ph.ConnsPerSec, ph.Errors, ph.RedisPerConn)
		}
	}
	return phases, nil
}

func must(n int64, err error) int64 {
	if err != nil {
		return -1
	}
	return n
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "cluster-bench: "+format+"\n", args...)
	}
}

var freeAddr = chain.FreeAddr

// Table renders the medians per mode as markdown.
func Table(phases []Phase) string {
	var b strings.Builder
	procs := []string{chain.Public, chain.PublicB, chain.Private, chain.PrivateB, chain.PublicEPS, chain.PrivateEPS, chain.Internal, "redis"}
	fmt.Fprintf(&b, "| through | conns/s | errors | %s | chain total | Redis commands / conn |\n", strings.Join(procs, " | "))
	fmt.Fprintf(&b, "|---|---:|---:|%s---:|---:|\n", strings.Repeat("---:|", len(procs)))
	one := median(phases, "one", func(p Phase) float64 { return p.ConnsPerSec })
	for _, mode := range []string{"one", "two"} {
		rate := median(phases, mode, func(p Phase) float64 { return p.ConnsPerSec })
		errs := 0
		for _, p := range phases {
			if p.Mode == mode {
				errs += p.Errors
			}
		}
		label := map[string]string{"one": "instance A only", "two": "A and B"}[mode]
		fmt.Fprintf(&b, "| %s | %.0f (%.2fx) | %d |", label, rate, rate/one, errs)
		total := 0.0
		for _, n := range procs {
			us := median(phases, mode, func(p Phase) float64 { return float64(p.CPUPerConn[n]) / float64(time.Microsecond) })
			if n != chain.Internal && n != "redis" {
				total += us
			}
			fmt.Fprintf(&b, " %.0f µs |", us)
		}
		fmt.Fprintf(&b, " %.0f µs | %.4f |\n", total, median(phases, mode, func(p Phase) float64 { return p.RedisPerConn }))
	}
	return b.String()
}

func median(phases []Phase, mode string, f func(Phase) float64) float64 {
	var v []float64
	for _, p := range phases {
		if p.Mode == mode {
			v = append(v, f(p))
		}
	}
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

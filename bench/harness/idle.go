package harness

import (
	"context"
	"time"

	"epsproxy/bench/load"
	"epsproxy/internal/chain"
	"epsproxy/internal/proc"
)

// Bounds of the idle scenario.
const (
	idleConcurrency = 50
	idleDrain       = 60 * time.Second
)

// runIdle is scenario 3: hold many idle relayed connections (handshake and one keep-alive GET,
// then nothing) and read each proxy's memory, fds and goroutines per connection. It runs once
// per target, before every scenario that loads the chain, so the processes' heaps have not been
// grown by earlier load that later connections could reuse.
func (e *env) runIdle(ctx context.Context) error {
	for _, t := range e.targets {
		if t.name == TargetDirect || t.name == TargetHAProxy2 {
			continue // no proxy, or the same process as one hop plus one more
		}
		ph, err := e.idlePhase(ctx, t)
		if err != nil {
			return err
		}
		e.res.Idle = append(e.res.Idle, ph)
		for _, p := range t.procs {
			if ip, ok := ph.Procs[p]; ok {
				e.logf("idle %-13s %-13s held %d in %.1f s: %s B RSS/conn, %s fds/conn, %s goroutines/conn",
					t.name, p, ph.Held, ph.SetupSeconds, num(ip.RSSPerConn, 0), num(ip.FDsPerConn, 2), num(ip.GoroutinesPerConn, 3))
			}
		}
	}
	e.saveAdmin(ctx, "after-idle")
	return nil
}

func (e *env) idlePhase(ctx context.Context, t target) (IdlePhase, error) {
	ph := IdlePhase{Target: t.name, Wanted: e.plan.IdleConns, Procs: map[string]IdleProc{}}
	var procs []string
	for _, p := range t.procs {
		if p == chain.Public || p == chain.Private || p == ProcHAProxyA || p == ProcHAProxyB {
			procs = append(procs, p)
		}
	}
	// sample reads each process's RSS, fds and (where it has /debug/stats) goroutines.
	type sample struct {
		rss             int64
		fds, goroutines int
	}
	read := func() (map[string]sample, error) {
		out := map[string]sample{}
		for _, p := range procs {
			pid := e.pids[p]()
			rss, err := proc.ReadRSS(pid)
			if err != nil {
				return nil, err
			}
			fds, err := proc.CountFDs(pid)
			if err != nil {
				return nil, err
			}
			g := -1
			if e.ch.AdminAddr(p) != "" {
				st, err := e.ch.Stats(ctx, p)
				if err != nil {
					return nil, err
				}
				g = st.Process.Goroutines
			}
			out[p] = sample{rss: rss, fds: fds, goroutines: g}
		}
		return out, nil
	}
	before, err := read()
	if err != nil {
		return ph, err
	}
	start := time.Now()
	h, err := load.Hold(ctx, load.HoldConfig{Addr: t.tlsAddr, TLS: e.connTLS, Request: load.Request(chain.Domain, "/jsonrpc", false),
		Conns: e.plan.IdleConns, Concurrency: idleConcurrency, Rate: e.plan.IdleRate, Timeout: connTimeout})
	if err != nil {
		return ph, err
	}
	defer e.release(ctx, t, h)
	ph.SetupSeconds = time.Since(start).Seconds()
	ph.Held, ph.Failed, ph.FirstError = h.Len(), h.Failed, h.First
	if err := sleep(ctx, secs(e.plan.IdleSettleSeconds)); err != nil {
		return ph, err
	}
	after, err := read()
	if err != nil {
		return ph, err
	}
	n := float64(ph.Held)
	for _, p := range procs {
		b, a := before[p], after[p]
		ip := IdleProc{RSSBefore: b.rss, RSSAfter: a.rss, FDsBefore: b.fds, FDsAfter: a.fds,
			GoroutinesBefore: b.goroutines, GoroutinesAfter: a.goroutines}
		ip.RSSPerConn = Float(div(float64(ip.RSSAfter-ip.RSSBefore), n))
		ip.FDsPerConn = Float(div(float64(ip.FDsAfter-ip.FDsBefore), n))
		ip.GoroutinesPerConn = Float(nan())
		if ip.GoroutinesBefore >= 0 {
			ip.GoroutinesPerConn = Float(div(float64(ip.GoroutinesAfter-ip.GoroutinesBefore), n))
		}
		ph.Procs[p] = ip
	}
	return ph, nil
}

// release closes the held connections and waits, bounded, until the proxies let go of them, so
// the next scenario starts from a quiet chain.
func (e *env) release(ctx context.Context, t target, h *load.Held) {
	h.Close()
	deadline := time.Now().Add(idleDrain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		busy := 0
		if t.name == TargetChain {
			for _, p := range adminProcs {
				if st, err := e.ch.Stats(ctx, p); err == nil {
					busy += int(st.Counters["Pairs"])
				}
			}
		} else if pid := e.pids[ProcHAProxyA]; pid != nil {
			// HAProxy has no stats endpoint here: wait for its fds to drop back near idle.
			if n, err := proc.CountFDs(pid()); err == nil && n > 100 {
				busy = n
			}
		}
		if busy == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.logf("idle %s: connections still open %v after release", t.name, idleDrain)
}

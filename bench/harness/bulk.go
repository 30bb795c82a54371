package harness

import (
	"context"
	"time"

	"epsproxy/bench/load"
)

const gib = 1 << 30

// runBulk is scenario 2: one and eight streams, each way, over TLS and raw TCP. Throughput is
// counted at the receiver over a window that starts after a warm-up, so buffers filling at the
// start do not count.
func (e *env) runBulk(ctx context.Context) error {
	for rep := range e.plan.Reps {
		k := 0
		for _, transport := range []string{"tls", "raw"} {
			for _, dir := range []string{"up", "down"} {
				for _, n := range e.plan.Streams {
					k++
					for _, t := range rotate(e.targets, rep+k) {
						if err := ctx.Err(); err != nil {
							return err
						}
						ph := e.bulkPhase(ctx, rep+1, t, transport, dir, n)
						e.res.Bulk = append(e.res.Bulk, ph)
						e.logf("bulk rep %d/%d %-3s %-4s x%d %-13s %8.1f MB/s %s", rep+1, e.plan.Reps, transport, dir, n, t.name, ph.MBps, ph.Error)
						if err := sleep(ctx, secs(e.plan.PauseSeconds)); err != nil {
							return err
						}
					}
				}
			}
		}
	}
	e.saveAdmin(ctx, "after-bulk")
	return nil
}

func (e *env) bulkPhase(ctx context.Context, rep int, t target, transport, dir string, streams int) BulkPhase {
	ph := BulkPhase{Rep: rep, Target: t.name, Transport: transport, Direction: dir, Streams: streams,
		CPUs: map[string]float64{}, CPUPerGiB: map[string]Float{}}
	cfg := load.BulkConfig{Streams: streams, Upload: dir == "up", Timeout: 10 * time.Second}
	srv := e.bulk
	if transport == "tls" {
		cfg.Addr, cfg.TLS = t.bulkAddr, e.bulkTLS
	} else {
		cfg.Addr, cfg.Hello, srv = t.rawAddr, e.hello, e.raw
	}
	b, err := load.StartBulk(ctx, cfg)
	if err != nil {
		ph.Error = err.Error()
		return ph
	}
	count := b.Received
	if cfg.Upload {
		count = srv.Received
	}
	if sleep(ctx, secs(e.plan.BulkWarmupSeconds)) != nil {
		b.Stop()
		ph.Error = ctx.Err().Error()
		return ph
	}
	n0, cpu0, t0 := count(), e.cpuSnapshot(), time.Now()
	_ = sleep(ctx, secs(e.plan.BulkWindowSeconds))
	n1, cpu1, t1 := count(), e.cpuSnapshot(), time.Now()
	if err := b.Stop(); err != nil {
		ph.Error = "a stream ended early: " + err.Error()
	}
	ph.Bytes, ph.Seconds = n1-n0, t1.Sub(t0).Seconds()
	ph.MBps = float64(ph.Bytes) / 1e6 / ph.Seconds
	for n, d := range delta(cpu0, cpu1) {
		ph.CPUs[n] = d.Seconds()
		ph.CPUPerGiB[n] = Float(div(d.Seconds(), float64(ph.Bytes)/gib))
	}
	return ph
}

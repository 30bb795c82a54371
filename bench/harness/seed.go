package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"epsproxy/bench/apt"
	"epsproxy/internal/chain"
	"epsproxy/internal/proc"
)

// runSeed is scenario 4: the README's stress test, `seq 1 N | parallel -j 25 curl ...`, against
// the chain and directly against the internal server, interleaved per repetition.
func (e *env) runSeed(ctx context.Context) error {
	if err := seedTools(ctx, e.log); err != nil {
		e.res.Skipped = append(e.res.Skipped, "seed stress test: "+err.Error())
		e.logf("seed stress test skipped: %v", err)
		return nil
	}
	var ts []target
	for _, t := range e.targets {
		if t.name == TargetChain || t.name == TargetDirect {
			ts = append(ts, t)
		}
	}
	root := filepath.Join(e.work, "settings", "dev", "certs", "root.crt")
	for rep := range e.plan.Reps {
		for _, t := range rotate(ts, rep) {
			if err := ctx.Err(); err != nil {
				return err
			}
			ph := e.seedPhase(ctx, rep+1, t, root)
			e.res.Seed = append(e.res.Seed, ph)
			e.logf("seed rep %d/%d %-13s %4d/%d OK in %.2f s (%.0f req/s) %s", rep+1, e.plan.Reps, t.name, ph.OK, ph.Requests, ph.Seconds, ph.ReqPerSec, ph.Error)
		}
	}
	e.saveAdmin(ctx, "after-seed")
	return nil
}

// seedTools finds GNU parallel (moreutils has another `parallel`) and curl, installing their
// Debian packages when they are missing and the harness runs as root.
func seedTools(ctx context.Context, w io.Writer) error {
	if _, err := apt.Ensure(ctx, w, "curl", "curl"); err != nil {
		return err
	}
	bin, err := apt.Ensure(ctx, w, "parallel", "parallel")
	if err != nil {
		return err
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !bytes.Contains(out, []byte("GNU parallel")) {
		return errors.New("`parallel` is not GNU parallel (apt-get install -y parallel)")
	}
	return nil
}

// seedCommand is the README's command line for a TLS port. As in the README, `{}` is GNU parallel's
// replacement string: each request posts its sequence number, which is valid JSON.
func seedCommand(n, jobs int, root, port string) string {
	host := chain.Domain
	return fmt.Sprintf("seq 1 %d | parallel -j %d curl -s -o /dev/null -w '%%{http_code}\\\\n' --cacert %s --resolve %s:%s:127.0.0.1 https://%s:%s/jsonrpc --data '{}'",
		n, jobs, shellQuote(root), host, port, host, port)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (e *env) seedPhase(ctx context.Context, rep int, t target, root string) SeedPhase {
	_, port, _ := strings.Cut(t.tlsAddr, ":")
	cmdline := seedCommand(e.plan.SeedRequests, e.plan.SeedParallel, root, port)
	ph := SeedPhase{Rep: rep, Target: t.name, Requests: e.plan.SeedRequests, Codes: map[string]int{}, Command: cmdline}
	// A generous bound: the stress test needs about a millisecond of wall time per request here.
	cctx, cancel := context.WithTimeout(ctx, time.Duration(e.plan.SeedRequests)*50*time.Millisecond+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "bash", "-c", cmdline)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before, beforeSw := e.cpuSnapshot(), e.switchSnapshot()
	machine, merr := proc.ReadMachineCPU()
	start := time.Now()
	err := cmd.Run()
	ph.Seconds = time.Since(start).Seconds()
	cpu, sw := delta(before, e.cpuSnapshot()), delta(beforeSw, e.switchSnapshot())
	if after, err := proc.ReadMachineCPU(); merr == nil && err == nil && after > machine {
		ph.MachineCPUms = ms(after - machine)
	}
	ph.CPUms, ph.Switches = map[string]float64{}, sw
	for n, d := range cpu {
		ph.CPUms[n] = ms(d)
	}
	for _, line := range strings.Fields(stdout.String()) {
		ph.Codes[line]++
		if line == "200" {
			ph.OK++
		}
	}
	ph.Failed = ph.Requests - ph.OK
	ph.ReqPerSec = float64(ph.OK) / ph.Seconds
	if err != nil {
		ph.Error = fmt.Sprintf("%v: %s", err, strings.TrimSpace(lastLine(stderr.String())))
	}
	return ph
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

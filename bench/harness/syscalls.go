package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"epsproxy/bench/load"
	"epsproxy/bench/report"
	"epsproxy/internal/chain"
)

// The syscall count (Options.Syscalls): after the timed connection phases, each proxy target
// takes syscallConns more connections at syscallConcurrency while `perf stat` counts the system
// calls its processes enter. It is a phase of its own because tracing slows what it traces.
const (
	syscallConns       = 3000
	syscallConcurrency = 25
	syscallMaxTime     = 30 * time.Second // the count's load stops here, done or not
	perfAttach         = 500 * time.Millisecond
	perfStop           = 10 * time.Second // perf has this long to write its counts after SIGINT
)

// totalEvent counts every system call; the others break it down.
const totalEvent = "raw_syscalls:sys_enter"

// syscallGroups are the columns of the syscall table: the calls a relaying proxy makes, grouped
// by what they are for. Calls in no group count under "other" (total minus the groups).
var syscallGroups = []struct {
	Name  string
	Calls []string
}{
	{"epoll wait", []string{"epoll_wait", "epoll_pwait"}},
	{"epoll_ctl", []string{"epoll_ctl"}},
	{"splice", []string{"splice"}},
	{"send, write", []string{"sendto", "sendmsg", "write", "writev"}},
	{"recv, read", []string{"recvfrom", "recvmsg", "read", "readv"}},
	{"accept, connect, close", []string{"accept4", "accept", "socket", "connect", "close", "shutdown"}},
	{"options, fcntl", []string{"setsockopt", "getsockopt", "fcntl", "ioctl"}},
	{"futex, sleep", []string{"futex", "nanosleep", "sched_yield"}},
	// HAProxy reads its threads' CPU clocks, which no vDSO serves.
	{"clock_gettime", []string{"clock_gettime"}},
}

// SyscallCount is what one process of one target entered per connection of the count.
type SyscallCount struct {
	Target  string `json:"target"`
	Process string `json:"process"`
	Conns   int    `json:"conns"`
	// Total is every system call per connection; PerConn has each call of syscallGroups.
	Total   Float            `json:"total"`
	PerConn map[string]Float `json:"per_conn"`
}

// perfEvents is the -e list: the total, then every call of the groups.
func perfEvents() string {
	ev := []string{totalEvent}
	for _, g := range syscallGroups {
		for _, c := range g.Calls {
			ev = append(ev, "syscalls:sys_enter_"+c)
		}
	}
	return strings.Join(ev, ",")
}

// parsePerfStat reads `perf stat -x,` output: one "count,unit,event,..." line per event. An
// event never enabled because the process never ran while traced ("<not counted>", an idle EPS
// node's) counts 0; any other count that is not a number ("<not supported>") is an error
// naming the event.
func parsePerfStat(b []byte) (map[string]int64, error) {
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 3 {
			return nil, fmt.Errorf("perf stat line %q: want count,unit,event,...", line)
		}
		if f[0] == "<not counted>" {
			f[0] = "0"
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("perf stat: event %s: count %q", f[2], f[0])
		}
		out[f[2]] = n
	}
	if _, ok := out[totalEvent]; !ok {
		return nil, fmt.Errorf("perf stat: no %s count in its output", totalEvent)
	}
	return out, nil
}

// checkPerf runs perf once on `true` with the events the count uses: nil when they can be
// counted here, else why not (no perf, no permission to trace, no tracepoints).
func checkPerf(ctx context.Context) error {
	if _, err := exec.LookPath("perf"); err != nil {
		return errors.New("perf is not installed (Debian package linux-perf)")
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "perf", "stat", "-x,", "-e", perfEvents(), "--", "true").CombinedOutput()
	if err == nil {
		_, err = parsePerfStat(out)
	}
	if err != nil {
		return fmt.Errorf("perf stat cannot count system calls here: %v: %s", err, lastLine(string(out)))
	}
	return nil
}

// countSyscalls is the syscall count of every target that has proxy processes.
func (e *env) countSyscalls(ctx context.Context, req []byte) error {
	if err := checkPerf(ctx); err != nil {
		e.res.Skipped = append(e.res.Skipped, "syscall count: "+err.Error())
		e.logf("syscall count skipped: %v", err)
		return nil
	}
	e.res.SyscallNs = Float(syscallCost())
	dir := filepath.Join(e.work, "perf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, t := range e.targets {
		counts, err := e.countTarget(ctx, t, req, dir)
		if err != nil {
			return fmt.Errorf("syscall count of %s: %w", t.name, err)
		}
		e.res.Syscalls = append(e.res.Syscalls, counts...)
	}
	return nil
}

// syscallEndpoints are traced behind every target, direct too: a proxy that hands the endpoints
// its bytes in more pieces makes them enter more calls, which its own count does not show.
var syscallEndpoints = []string{chain.Internal, ProcHarness}

// countTarget attaches one perf stat to each of t's processes and to the endpoints, sends the
// count's connections through t, and stops the perfs.
func (e *env) countTarget(ctx context.Context, t target, req []byte, dir string) ([]SyscallCount, error) {
	type traced struct {
		proc string
		cmd  *exec.Cmd
		file string
		errs bytes.Buffer
	}
	var perfs []*traced
	stop := func() {
		for _, p := range perfs {
			_ = p.cmd.Process.Signal(syscall.SIGINT)
		}
		for _, p := range perfs {
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(perfStop):
				_ = p.cmd.Process.Kill()
				<-done
			}
		}
	}
	for _, name := range append(slices.Clone(t.procs), syscallEndpoints...) {
		pid := 0
		if f := e.pids[name]; f != nil {
			pid = f()
		}
		if pid <= 0 {
			continue
		}
		p := &traced{proc: name, file: filepath.Join(dir, t.name+"-"+name+".csv")}
		p.cmd = exec.Command("perf", "stat", "-x,", "-o", p.file, "-e", perfEvents(), "-p", strconv.Itoa(pid))
		p.cmd.Stderr = &p.errs
		if err := p.cmd.Start(); err != nil {
			stop()
			return nil, err
		}
		perfs = append(perfs, p)
	}
	if err := sleep(ctx, perfAttach); err != nil {
		stop()
		return nil, err
	}
	r, err := load.RunConns(ctx, load.ConnsConfig{Addr: t.tlsAddr, TLS: e.connTLS, Request: req,
		Concurrency: syscallConcurrency, Duration: syscallMaxTime, MaxConns: syscallConns, Timeout: connTimeout})
	stop()
	if err != nil {
		return nil, err
	}
	if r.OK == 0 {
		return nil, fmt.Errorf("no connection succeeded (%d failed): %s", r.Errors, r.FirstError)
	}
	var out []SyscallCount
	for _, p := range perfs {
		b, err := os.ReadFile(p.file)
		if err == nil {
			var m map[string]int64
			if m, err = parsePerfStat(b); err == nil {
				out = append(out, perConn(t.name, p.proc, r.OK, m))
				continue
			}
		}
		return nil, fmt.Errorf("%s: %v %s", p.proc, err, strings.TrimSpace(p.errs.String()))
	}
	e.logf("syscalls %-13s %d connections: %s", t.name, r.OK, describeCounts(out))
	return out, nil
}

// perConn divides perf's counts by the connections.
func perConn(target, proc string, conns int, m map[string]int64) SyscallCount {
	c := SyscallCount{Target: target, Process: proc, Conns: conns, PerConn: map[string]Float{},
		Total: Float(float64(m[totalEvent]) / float64(conns))}
	for _, g := range syscallGroups {
		for _, call := range g.Calls {
			if n, ok := m["syscalls:sys_enter_"+call]; ok && n > 0 {
				c.PerConn[call] = Float(float64(n) / float64(conns))
			}
		}
	}
	return c
}

func describeCounts(cs []SyscallCount) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %.1f", c.Process, float64(c.Total)))
	}
	return strings.Join(parts, ", ") + " per connection"
}

// syscallCost is what one getppid(2), the cheapest system call, takes on this machine in
// nanoseconds: the median of five timed runs of 100,000. It converts the counts into time.
func syscallCost() float64 {
	const n = 100_000
	var runs []float64
	for range 5 {
		t := time.Now()
		for range n {
			_, _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
		}
		runs = append(runs, float64(time.Since(t).Nanoseconds())/n)
	}
	return report.Median(runs)
}

// syscallTable renders the count: per target and process, the calls per connection by group.
func syscallTable(res *Results) report.Table {
	header := []string{"target", "process", "total"}
	for _, g := range syscallGroups {
		header = append(header, g.Name)
	}
	header = append(header, "other")
	t := report.Table{
		Title:  "System calls per new connection (c=25), counted by perf stat",
		Header: header,
	}
	rows := slices.Clone(res.Syscalls)
	slices.SortStableFunc(rows, func(a, b SyscallCount) int {
		return slices.Index(targetOrder, a.Target) - slices.Index(targetOrder, b.Target)
	})
	conns := 0
	for _, c := range rows {
		conns = max(conns, c.Conns)
		line := []string{c.Target, c.Process, num(c.Total, 1)}
		grouped := 0.0
		for _, g := range syscallGroups {
			s := 0.0
			for _, call := range g.Calls {
				s += float64(c.PerConn[call])
			}
			grouped += s
			line = append(line, num(Float(s), 1))
		}
		line = append(line, num(Float(max(0, float64(c.Total)-grouped)), 1))
		t.Rows = append(t.Rows, line)
	}
	note := fmt.Sprintf("After the timed phases, %d connections per target with perf stat attached to each proxy process, "+
		"the internal server and this harness (the load generator) (raw_syscalls:sys_enter for the total, syscalls:sys_enter_* for the groups); tracing slows the proxies, "+
		"so these phases are not timed.", conns)
	if res.SyscallNs > 0 {
		note += fmt.Sprintf(" One getppid(2), the cheapest call, took %s ns on this machine.", num(res.SyscallNs, 0))
	}
	t.Notes = []string{note}
	return t
}

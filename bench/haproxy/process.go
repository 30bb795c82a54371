package haproxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds the config check and waiting for the listener.
const startTimeout = 10 * time.Second

// Process is a running HAProxy.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan error
	log  string
}

// Start writes cfg to dir/name.cfg, checks it with `haproxy -c`, starts HAProxy in the
// foreground (-db) with its output in dir/name.log, and returns once cfg.Bind accepts
// connections. The process is not tied to ctx: call Stop. Calls with distinct names and binds
// may run concurrently.
func Start(ctx context.Context, bin, dir, name string, cfg Config) (*Process, error) {
	body, err := cfg.Render()
	if err != nil {
		return nil, fmt.Errorf("haproxy %s: %w", name, err)
	}
	path := filepath.Join(dir, name+".cfg")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if out, err := exec.CommandContext(cctx, bin, "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("haproxy %s: config check: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &Process{Name: name, cmd: exec.Command(bin, "-db", "-f", path), done: make(chan error, 1), log: logPath}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("haproxy %s: %w", name, err)
	}
	go func() { p.done <- p.cmd.Wait(); log.Close() }()
	for {
		c, err := net.DialTimeout("tcp", cfg.Bind, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case werr := <-p.done:
			p.done <- werr
			return nil, fmt.Errorf("haproxy %s exited at start (%v): %s", name, werr, p.LogTail(5))
		case <-cctx.Done():
			_ = p.Stop(time.Second)
			return nil, fmt.Errorf("haproxy %s: %s did not accept within %v", name, cfg.Bind, startTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Pid is the process id. Safe from any goroutine.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop asks HAProxy to stop (SIGTERM: immediate stop, connections closed), waits up to grace,
// then kills it. Call it once, from one goroutine.
func (p *Process) Stop(grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("haproxy %s did not stop within %v", p.Name, grace)
	}
}

// LogTail returns the last n lines of the process's output. Safe from any goroutine.
func (p *Process) LogTail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"epsproxy/internal/admin"
)

// Fault tests need finer control than Start/Stop: deliver a signal and watch the exit separately,
// run a command with settings that must make it fail, and read a process's /debug/stats.

// maxStatsBody caps a /debug/stats answer; it is a few hundred bytes.
const maxStatsBody = 1 << 20

// Signal sends sig to a running process and returns at once; Wait collects the exit. It returns
// an error when the process is not running. Safe from any goroutine.
func (c *Chain) Signal(name string, sig os.Signal) error {
	c.mu.Lock()
	cmd := c.procs[name]
	c.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s is not running", name)
	}
	return cmd.Process.Signal(sig)
}

// Wait waits up to d for a process to exit. exited is false when it is still running after d (it
// is left running); otherwise err is its exit error (nil for exit status 0) and the process is
// forgotten, so Start may run it again. Do not call it concurrently with Stop or Kill of the same
// process.
func (c *Chain) Wait(name string, d time.Duration) (exited bool, err error) {
	c.mu.Lock()
	cmd, done := c.procs[name], c.waits[name]
	c.mu.Unlock()
	if cmd == nil {
		return true, fmt.Errorf("%s is not running", name)
	}
	select {
	case err := <-done:
		c.mu.Lock()
		if c.procs[name] == cmd {
			delete(c.procs, name)
		}
		c.mu.Unlock()
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

// Command returns a process's command line and environment without starting it, for a caller
// that runs it itself (with settings that must make it fail, say). Its output goes nowhere
// until the caller sets Stdout and Stderr. Not safe concurrently with changes to Env.
func (c *Chain) Command(name string) (*exec.Cmd, error) {
	return c.command(name)
}

// adminEnv is the variable that sets the admin bind address of each process.
var adminEnv = map[string]string{
	Public: "PROXY_ADMIN_BIND", Private: "PROXY_ADMIN_BIND",
	PublicEPS: "EPS_ADMIN_BIND", PrivateEPS: "EPS_ADMIN_BIND", OtherEPS: "EPS_ADMIN_BIND",
}

// EnableAdmin makes a process open its admin listener on addr (a loopback host:port) from its
// next Start. Not safe concurrently with Start.
func (c *Chain) EnableAdmin(name, addr string) error {
	v := adminEnv[name]
	if v == "" {
		return fmt.Errorf("%s has no admin listener", name)
	}
	c.Env[name] = append(c.Env[name], v+"="+addr)
	return nil
}

// AdminAddr is the admin address EnableAdmin set for a process, or "". Not safe concurrently
// with EnableAdmin or other changes to Env.
func (c *Chain) AdminAddr(name string) string {
	v := adminEnv[name]
	if v == "" {
		return ""
	}
	addr := ""
	for _, kv := range c.Env[name] {
		if a, ok := strings.CutPrefix(kv, v+"="); ok {
			addr = a // the last one wins, as in the process's environment
		}
	}
	return addr
}

// Stats is a process's /debug/stats.
type Stats struct {
	Process admin.Process
	// Counters holds the numeric fields of the role's own section ("public" or "private"), by
	// field name (e.g. "Pairs", "HelloConns", "BadTokens").
	Counters map[string]int64
}

// Stats reads /debug/stats of a process whose admin listener EnableAdmin turned on. Safe from
// any goroutine once Env no longer changes.
func (c *Chain) Stats(ctx context.Context, name string) (Stats, error) {
	addr := c.AdminAddr(name)
	if addr == "" {
		return Stats{}, fmt.Errorf("%s: no admin address; call EnableAdmin before Start", name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/stats", nil)
	if err != nil {
		return Stats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Stats{}, fmt.Errorf("%s stats: %w", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatsBody))
	if err != nil {
		return Stats{}, fmt.Errorf("%s stats: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Stats{}, fmt.Errorf("%s stats: HTTP %d", name, resp.StatusCode)
	}
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(body, &sections); err != nil {
		return Stats{}, fmt.Errorf("%s stats: %w", name, err)
	}
	var st Stats
	raw, ok := sections["process"]
	if !ok {
		return Stats{}, errors.New(name + " stats: no process section")
	}
	if err := json.Unmarshal(raw, &st.Process); err != nil {
		return Stats{}, fmt.Errorf("%s stats: process: %w", name, err)
	}
	st.Counters = map[string]int64{}
	for sec, raw := range sections {
		if sec == "process" {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(raw, &fields) != nil {
			continue // not an object: nothing to count
		}
		for k, v := range fields {
			if f, ok := v.(float64); ok {
				st.Counters[k] = int64(f)
			}
		}
	}
	return st, nil
}

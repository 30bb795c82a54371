package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"epsproxy/internal/admin"
)

// Finer control than Start/Stop, for fault tests: deliver a signal and watch the exit
// separately. And the admin listener, for every caller that watches a process: turn it on and
// read /debug/stats.

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

// adminEnv is the variable that sets the admin bind address of each process.
var adminEnv = map[string]string{
	Public: "PROXY_ADMIN_BIND", Private: "PROXY_ADMIN_BIND", PublicB: "PROXY_ADMIN_BIND", PrivateB: "PROXY_ADMIN_BIND",
	PublicEPS: "EPS_ADMIN_BIND", PrivateEPS: "EPS_ADMIN_BIND", OtherEPS: "EPS_ADMIN_BIND",
}

// EnableAdmin makes a process open its admin listener (pprof, /debug/stats and /metrics) on a
// free loopback address from its next Start, and keeps that address across restarts; without it
// the process's admin listener is off. It returns an error for a process without one (the
// internal server) or when no address is free. Safe from any goroutine.
func (c *Chain) EnableAdmin(name string) error {
	if adminEnv[name] == "" {
		return fmt.Errorf("%s has no admin listener", name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin[name] != "" {
		return nil
	}
	addr, err := c.freeAddr()
	if err != nil {
		return fmt.Errorf("%s admin address: %w", name, err)
	}
	c.admin[name] = addr
	return nil
}

// AdminAddr is the admin address EnableAdmin chose for a process, or "" when its admin
// listener is off. Safe from any goroutine.
func (c *Chain) AdminAddr(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.admin[name]
}

// Stats is a process's /debug/stats.
type Stats struct {
	Process admin.Process
	// Counters holds the numeric fields of the role's own section ("public" or "private"), by
	// field name (e.g. "Pairs", "HelloConns", "BadTokens").
	Counters map[string]int64
	// Raw is the answer as the process sent it, for a run's record.
	Raw json.RawMessage
}

// Bounds of an admin read: /debug/stats is a few hundred bytes and /metrics a few dozen KiB,
// built at once, so a process that takes seconds is stuck and waiting longer would only hide
// that.
const (
	maxAdminBody = 4 << 20
	adminTimeout = 5 * time.Second
)

var adminClient = &http.Client{Timeout: adminTimeout}

// Stats reads /debug/stats of a process whose admin listener EnableAdmin turned on. Safe from
// any goroutine.
func (c *Chain) Stats(ctx context.Context, name string) (Stats, error) {
	body, err := c.adminGet(ctx, name, "/debug/stats")
	if err != nil {
		return Stats{}, err
	}
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(body, &sections); err != nil {
		return Stats{}, fmt.Errorf("%s stats: %w", name, err)
	}
	st := Stats{Raw: bytes.TrimSpace(body), Counters: map[string]int64{}}
	raw, ok := sections["process"]
	if !ok {
		return Stats{}, errors.New(name + " stats: no process section")
	}
	if err := json.Unmarshal(raw, &st.Process); err != nil {
		return Stats{}, fmt.Errorf("%s stats: process: %w", name, err)
	}
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

// Metrics reads /metrics of a process whose admin listener EnableAdmin turned on: the
// Prometheus exposition text, as a scraper gets it. Safe from any goroutine.
func (c *Chain) Metrics(ctx context.Context, name string) ([]byte, error) {
	return c.adminGet(ctx, name, "/metrics")
}

// adminGet GETs path from a process's admin listener and returns the body of a 200 answer.
func (c *Chain) adminGet(ctx context.Context, name, path string) ([]byte, error) {
	addr := c.AdminAddr(name)
	if addr == "" {
		return nil, fmt.Errorf("%s: no admin address; call EnableAdmin before Start", name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: HTTP %d", name, path, resp.StatusCode)
	}
	return body, nil
}

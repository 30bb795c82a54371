package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"epsproxy/internal/config"
	"epsproxy/internal/daemon"
	"epsproxy/proxy"
)

// reloadable adds SIGHUP to a running role: the settings are loaded again; the role applies
// what it can at once (role); the keys every role shares keep their running values, except
// log_level; the keys that need a new process are named in one warning.
type reloadable struct {
	daemon.Service
	which string // "public" or "private"
	start settings
	role  func(s settings) (restart []string, err error)
	level *slog.LevelVar
	log   *slog.Logger
	// drain is the role's drain_timeout as last loaded; the process stops within it and a margin.
	drain func() time.Duration
}

// stopMargin is what a stopping proxy is given beyond its drain_timeout to close the rest.
const stopMargin = 5 * time.Second

// Grace is how long the proxy has to stop, drain_timeout (as last reloaded) included.
func (r *reloadable) Grace() time.Duration { return r.drain() + stopMargin }

// Failed forwards the role's failures (a public proxy whose listeners died).
func (r *reloadable) Failed() <-chan error {
	if f, ok := r.Service.(daemon.Failing); ok {
		return f.Failed()
	}
	return nil
}

// Reload re-reads $PROXY_SETTINGS (SIGHUP).
func (r *reloadable) Reload() error {
	var s settings
	if err := config.Load("PROXY_SETTINGS", "PROXY_", &s); err != nil {
		return err
	}
	if (r.which == "public" && s.Public == nil) || (r.which == "private" && s.Private == nil) {
		return fmt.Errorf("%s: no `%s` block any more: a running proxy keeps its role", os.Getenv("PROXY_SETTINGS"), r.which)
	}
	restart, err := r.role(s)
	if err != nil {
		return config.Join(r.which, err)
	}
	for i, k := range restart {
		restart[i] = r.which + "." + k
	}
	restart = append(restart, proxy.ChangedKeys(r.start, s, "log_level", "public", "private")...)
	level, _ := config.ParseLevel(s.LogLevel, "log_level") // checked by Load
	r.level.Set(level)
	if len(restart) > 0 {
		r.log.Warn("changed settings keep their running values until a restart", "keys", restart)
	}
	return nil
}

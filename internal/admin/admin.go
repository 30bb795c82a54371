// Package admin is the optional diagnostics listener every long-running command can open on a
// loopback address: net/http/pprof under /debug/pprof/, a JSON snapshot of the process
// (goroutines, open file descriptors, memory, plus the counters the command registers) under
// /debug/stats, and whatever else the command hands it (Handle: the Prometheus metrics at
// /metrics). The benchmark harness, profiling sessions and Prometheus read it; nothing in the
// data path depends on it. It must stay off unless an address is configured.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"epsproxy/internal/config"
)

// Settings is the `admin` block of a command's settings.
type Settings struct {
	// Bind is the address of the diagnostics listener; empty turns it off. It must be a loopback
	// address (pprof exposes the process's memory) unless AllowRemote says otherwise.
	Bind string `yaml:"bind" env:"ADMIN_BIND"`
	// AllowRemote lets Bind be any address, for an operator who guards it some other way.
	AllowRemote bool `yaml:"allow_remote"`
}

// Validate checks that Bind is host:port on loopback (127.0.0.0/8, ::1 or localhost), unless
// AllowRemote is set. Keys are relative to the block.
func (s Settings) Validate() error {
	if s.Bind == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(s.Bind)
	if err != nil {
		return config.Errorf("bind", "%v", err)
	}
	if s.AllowRemote {
		return nil
	}
	if ip, err := netip.ParseAddr(host); (err == nil && ip.Unmap().IsLoopback()) || host == "localhost" {
		return nil
	}
	return config.Errorf("bind", "%s is not a loopback address: the admin listener serves pprof, which exposes the process's memory; set allow_remote: true to serve it there anyway", s.Bind)
}

// Server is a running diagnostics listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
	mux *http.ServeMux
	log *slog.Logger

	mu    sync.Mutex
	stats map[string]func() any
}

// Start opens the listener if s.Bind is set; with no address it returns nil, nil.
func Start(s Settings, log *slog.Logger) (*Server, error) {
	if s.Bind == "" {
		return nil, nil
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.Bind)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	a := &Server{ln: ln, mux: mux, log: log, stats: map[string]func() any{}}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/stats", a.serveStats)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 2 * time.Minute}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "err", err)
		}
	}()
	log.Info("admin listening", "addr", ln.Addr().String(), "pprof", "/debug/pprof/", "stats", "/debug/stats")
	return a, nil
}

// Register adds a named section to /debug/stats. Safe on a nil Server (does nothing).
func (a *Server) Register(name string, f func() any) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.stats[name] = f
	a.mu.Unlock()
}

// Handle serves h at pattern (an http.ServeMux pattern such as "/metrics") besides pprof and
// the stats. Safe on a nil Server (does nothing) and while serving.
func (a *Server) Handle(pattern string, h http.Handler) {
	if a == nil {
		return
	}
	a.mux.Handle(pattern, h)
	a.log.Info("admin serves", "path", pattern, "addr", a.ln.Addr().String())
}

// Stop closes the listener. Safe on a nil Server.
func (a *Server) Stop(ctx context.Context) error {
	if a == nil {
		return nil
	}
	return a.srv.Shutdown(ctx)
}

// Process is the process section of /debug/stats.
type Process struct {
	Goroutines int    `json:"goroutines"`
	GOMAXPROCS int    `json:"gomaxprocs"` // moves with the load in a public proxy (daemon.Governor)
	FDs        int    `json:"fds"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	Sys        uint64 `json:"sys"`
	NumGC      uint32 `json:"num_gc"`
}

func (a *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out := map[string]any{}
	fds := -1
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(ents)
	}
	out["process"] = Process{Goroutines: runtime.NumGoroutine(), GOMAXPROCS: runtime.GOMAXPROCS(0), FDs: fds, HeapAlloc: ms.HeapAlloc, Sys: ms.Sys, NumGC: ms.NumGC}
	a.mu.Lock()
	for name, f := range a.stats {
		out[name] = f()
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"testing"
)

// pprof exposes the process's memory: the listener stays on loopback unless an operator says
// otherwise in so many words.
func TestAdminListenerStaysOnLoopback(t *testing.T) {
	for bind, ok := range map[string]bool{
		"127.0.0.1:0": true, "127.0.0.2:0": true, "[::1]:0": true, "localhost:0": true,
		"0.0.0.0:0": false, ":0": false, "[::]:0": false, "10.0.0.1:0": false, "example.com:0": false,
	} {
		if err := (Settings{Bind: bind}).Validate(); (err == nil) != ok {
			t.Errorf("bind %s: %v", bind, err)
		}
	}
	if err := (Settings{Bind: "0.0.0.0:0", AllowRemote: true}).Validate(); err != nil {
		t.Errorf("allow_remote: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if s, err := Start(Settings{Bind: "0.0.0.0:0"}, log); err == nil {
		s.Stop(t.Context())
		t.Errorf("Start opened a listener on all interfaces")
	}
	s, err := Start(Settings{Bind: "127.0.0.1:0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Stop(t.Context())
}

// A command's own handlers (the metrics) are served next to the stats; a nil Server, the
// listener turned off, takes them without a word.
func TestHandle(t *testing.T) {
	var off *Server
	off.Handle("/metrics", http.NotFoundHandler())
	s, err := Start(Settings{Bind: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(t.Context())
	s.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") }))
	resp, err := http.Get("http://" + s.ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "up 1\n" {
		t.Errorf("GET /metrics: %d %q", resp.StatusCode, body)
	}
}

// /debug/stats says how many Ps the process runs with: a public proxy's governor moves it.
func TestStatsProcess(t *testing.T) {
	s, err := Start(Settings{Bind: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(t.Context())
	resp, err := http.Get("http://" + s.ln.Addr().String() + "/debug/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Process Process }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Process.GOMAXPROCS != runtime.GOMAXPROCS(0) || out.Process.Goroutines < 1 || out.Process.FDs < 1 {
		t.Errorf("process section %+v, want gomaxprocs %d and the goroutines and fds counted", out.Process, runtime.GOMAXPROCS(0))
	}
}

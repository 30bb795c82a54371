package admin

import (
	"io"
	"log/slog"
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

package proxy

import (
	"errors"
	"testing"
	"time"

	"epsproxy/engine/relay"
	"epsproxy/eps/directory"
	"epsproxy/epsclient"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
)

func TestRelaySettingsDefaultsAndChecks(t *testing.T) {
	var zero RelaySettings
	c := zero.Config(nil)
	if c.IdleTimeout != DefaultIdleTimeout || c.FinTimeout != DefaultFinTimeout || c.MaxPairs != DefaultMaxPairs || c.Loops != 0 {
		t.Errorf("zero settings: %+v", c)
	}
	if c.PipeSize != 0 {
		t.Errorf("zero settings: pipe size %d, want 0 (the relay's default)", c.PipeSize)
	}
	if c := (RelaySettings{PipeSize: relay.MaxPipeSize}).Config(nil); c.PipeSize != relay.MaxPipeSize {
		t.Errorf("pipe_size %d reached the relay as %d", relay.MaxPipeSize, c.PipeSize)
	}
	set := RelaySettings{IdleTimeout: config.Duration(time.Second), MaxPairs: 5, RelayLoops: 2}
	if d := set.WithDefaults(); d.IdleTimeout.D() != time.Second || d.MaxPairs != 5 || d.RelayLoops != 2 || d.DrainTimeout.D() != DefaultDrainTimeout {
		t.Errorf("set keys must stay: %+v", d)
	}
	for _, bad := range []RelaySettings{{IdleTimeout: -1}, {FinTimeout: -1}, {DrainTimeout: -1}, {MaxPairs: -1}, {RelayLoops: -1}, {RelayLoops: 1 << 20}, {PipeSize: -1}, {PipeSize: relay.MinPipeSize - 1}, {PipeSize: relay.MaxPipeSize + 1}} {
		var ke *config.KeyError
		if err := bad.Validate(); !errors.As(err, &ke) {
			t.Errorf("%+v: %v, want a key error", bad, err)
		}
	}
}

func TestCheckHostPort(t *testing.T) {
	for s, ok := range map[string]bool{"127.0.0.1:1": true, "[::1]:443": true, "host.example:80": true,
		"127.0.0.1": false, ":80": false, "127.0.0.1:0": false, "": false} {
		if err := CheckHostPort(s); (err == nil) != ok {
			t.Errorf("CheckHostPort(%q) = %v", s, err)
		}
	}
}

func TestGrant(t *testing.T) {
	call := func(settings map[string]any) *epsclient.Call {
		e := directory.Entry{Name: "op.test"}
		if settings != nil {
			e.Settings = []directory.Setting{{Service: "proxy", Operator: "self.test", Settings: settings}}
		}
		return &epsclient.Call{Caller: epsclient.Caller{Name: "op.test", Entry: e}}
	}
	g, err := Grant(call(map[string]any{"allowed_domains": []string{".a.example"}}), "self.test", "announce names to")
	if err != nil || len(g.AllowedDomains) != 1 {
		t.Errorf("granted: %+v %v", g, err)
	}
	code := func(err error) int {
		var e *jsonrpc.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return 0
	}
	if _, err := Grant(call(nil), "self.test", "announce names to"); code(err) != jsonrpc.CodeNotAllowed {
		t.Errorf("no grant: %v", err)
	}
	if _, err := Grant(call(map[string]any{"allowed_domains": []string{}}), "self.test", "x"); code(err) != jsonrpc.CodeNotAllowed {
		t.Errorf("empty grant: %v", err)
	}
	if _, err := Grant(call(map[string]any{"allowed_domains": "not a list"}), "self.test", "x"); code(err) != jsonrpc.CodeInternal {
		t.Errorf("malformed grant: %v", err)
	}
}

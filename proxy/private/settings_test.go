package private

import (
	"errors"
	"fmt"
	"testing"

	"epsproxy/internal/config"
	"epsproxy/proxy"
)

// Validate only checks: the loader validates the block and New validates it again, and a
// setting must mean the same after both, "standby: -1" (off) in particular. Defaults come from
// WithDefaults alone.
func TestValidateChangesNothingAndDefaultsApplyOnce(t *testing.T) {
	for _, tc := range []struct {
		in, want int
	}{{0, DefaultStandby}, {StandbyOff, StandbyOff}, {8, 8}} {
		s := Settings{InternalEndpoint: "127.0.0.1:8888", Standby: tc.in, Announce: []Announcement{{Domain: "A.example", Proxy: "pub"}}}
		before := fmt.Sprintf("%+v", s)
		for range 2 {
			if err := s.Validate(); err != nil {
				t.Fatalf("standby %d: %v", tc.in, err)
			}
		}
		if after := fmt.Sprintf("%+v", s); after != before {
			t.Errorf("Validate changed the settings:\n%s\n%s", before, after)
		}
		d := s.WithDefaults()
		if d.Standby != tc.want || d.WithDefaults().Standby != tc.want {
			t.Errorf("standby %d with defaults: %d (twice: %d), want %d", tc.in, d.Standby, d.WithDefaults().Standby, tc.want)
		}
		if d.Relay.MaxPairs != proxy.DefaultMaxPairs || d.DialTimeout.D() != DefaultDialTimeout || d.Relay.DrainTimeout.D() != proxy.DefaultDrainTimeout {
			t.Errorf("defaults not applied: %+v", d)
		}
		if s.Standby != tc.in {
			t.Errorf("WithDefaults changed its receiver")
		}
	}
	for _, bad := range []Settings{
		{InternalEndpoint: "127.0.0.1:8888", Standby: -2},
		{InternalEndpoint: "127.0.0.1:8888", Standby: 5000},
		{InternalEndpoint: "127.0.0.1:8888", StandbyWait: -1},
		{InternalEndpoint: "127.0.0.1:8888", DialTimeout: -1},
		{InternalEndpoint: "127.0.0.1:8888", Relay: proxy.RelaySettings{RelayLoops: -1}},
		{InternalEndpoint: "127.0.0.1:8888", Relay: proxy.RelaySettings{RelayLoops: 100000}},
		{InternalEndpoint: "127.0.0.1:8888", Relay: proxy.RelaySettings{IdleTimeout: -1}},
		{InternalEndpoint: "127.0.0.1:8888", Announce: []Announcement{{Domain: "bad..name", Proxy: "pub"}}},
		{InternalEndpoint: "127.0.0.1:0"},
	} {
		err := bad.Validate()
		var ke *config.KeyError
		if !errors.As(err, &ke) {
			t.Errorf("%+v: want a settings key error, got %v", bad, err)
		}
	}
}

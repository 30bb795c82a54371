package private

import (
	"errors"
	"testing"
	"time"

	"epsproxy/internal/config"
)

// The settings loader validates the block and New validates it again: a setting must mean the
// same after both, "standby: -1" (off) in particular.
func TestStandbySettings(t *testing.T) {
	for _, tc := range []struct {
		in, want int
	}{{0, DefaultStandby}, {-1, -1}, {8, 8}} {
		s := Settings{InternalEndpoint: "127.0.0.1:8888", Standby: tc.in}
		for range 2 {
			if err := s.Validate(); err != nil {
				t.Fatalf("standby %d: %v", tc.in, err)
			}
		}
		if s.Standby != tc.want {
			t.Errorf("standby %d after validating twice: %d, want %d", tc.in, s.Standby, tc.want)
		}
	}
	for _, bad := range []Settings{
		{InternalEndpoint: "127.0.0.1:8888", Standby: -2},
		{InternalEndpoint: "127.0.0.1:8888", Standby: 5000},
		{InternalEndpoint: "127.0.0.1:8888", StandbyWait: -1},
		{InternalEndpoint: "127.0.0.1:8888", RelayLoops: -1},
		{InternalEndpoint: "127.0.0.1:8888", RelayLoops: 100000},
	} {
		err := bad.Validate()
		var ke *config.KeyError
		if !errors.As(err, &ke) {
			t.Errorf("%+v: want a settings key error, got %v", bad, err)
		}
	}
}

func TestSynRetriesBoundTheConnect(t *testing.T) {
	for _, tc := range []struct {
		secs float64
		want int
	}{{0.5, 1}, {3, 1}, {5, 2}, {7, 2}, {10, 3}, {60, 5}} {
		if got := synRetries(secondsDur(tc.secs)); got != tc.want {
			t.Errorf("synRetries(%vs) = %d, want %d", tc.secs, got, tc.want)
		}
	}
}

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

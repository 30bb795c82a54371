package proxy

import (
	"cmp"
	"time"

	"epsproxy/engine/relay"
	"epsproxy/internal/config"
)

// Defaults of RelaySettings.
const (
	DefaultIdleTimeout  = time.Hour
	DefaultFinTimeout   = time.Minute
	DefaultDrainTimeout = 30 * time.Second
	DefaultMaxPairs     = 9000
)

// RelaySettings are the keys both roles' blocks have for the relay that carries their
// connections. Both blocks inline them (`yaml:",inline"`), so the keys sit in the role's block.
// A zero value means the default.
type RelaySettings struct {
	// IdleTimeout closes a relayed pair with no traffic for this long.
	IdleTimeout config.Duration `yaml:"idle_timeout"`
	// FinTimeout closes a half-closed pair (one side finished sending) after this long without
	// traffic, so a peer that never closes cannot hold it until IdleTimeout.
	FinTimeout config.Duration `yaml:"fin_timeout"`
	// DrainTimeout is how long a stopping proxy lets relayed pairs finish.
	DrainTimeout config.Duration `yaml:"drain_timeout"`
	// MaxPairs caps the relayed pairs held at once.
	MaxPairs int `yaml:"max_pairs"`
	// RelayLoops is the number of relay loops moving the bytes (default GOMAXPROCS/2, at
	// least 1).
	RelayLoops int `yaml:"relay_loops"`
	// PipeSize is the capacity, in bytes, of each kernel pipe a relay loop splices through
	// (default relay.DefaultPipeSize; from relay.MinPipeSize to relay.MaxPipeSize). A bigger pipe
	// moves a bulk stream in fewer, larger splices; a pipe holds bytes only while a destination
	// is slow to take them, at most relay.DefaultMaxPipes pipes per loop. A user without
	// CAP_SYS_RESOURCE is held to fs.pipe-user-pages-soft (16,384 pages, 64 MiB, by default) for
	// all its pipes together: past it, new pipes get the kernel's smallest size and still work.
	PipeSize int `yaml:"pipe_size"`
}

// Validate checks the keys; it changes nothing.
func (r RelaySettings) Validate() error {
	for key, d := range map[string]config.Duration{"idle_timeout": r.IdleTimeout, "fin_timeout": r.FinTimeout, "drain_timeout": r.DrainTimeout} {
		if d < 0 {
			return config.Errorf(key, "must not be negative")
		}
	}
	if r.MaxPairs < 0 || r.MaxPairs > relay.MaxMaxPairs {
		return config.Errorf("max_pairs", "%d is out of range: 0 (the default, %d) to %d", r.MaxPairs, DefaultMaxPairs, relay.MaxMaxPairs)
	}
	if r.RelayLoops < 0 || r.RelayLoops > relay.MaxLoops {
		return config.Errorf("relay_loops", "%d is out of range: 0 (the default) to %d", r.RelayLoops, relay.MaxLoops)
	}
	if r.PipeSize != 0 && (r.PipeSize < relay.MinPipeSize || r.PipeSize > relay.MaxPipeSize) {
		return config.Errorf("pipe_size", "%d is out of range: 0 (the default, %d) or %d to %d bytes", r.PipeSize, relay.DefaultPipeSize, relay.MinPipeSize, relay.MaxPipeSize)
	}
	return nil
}

// WithDefaults returns the settings with every zero key set to its default.
func (r RelaySettings) WithDefaults() RelaySettings {
	r.IdleTimeout = cmp.Or(r.IdleTimeout, config.Duration(DefaultIdleTimeout))
	r.FinTimeout = cmp.Or(r.FinTimeout, config.Duration(DefaultFinTimeout))
	r.DrainTimeout = cmp.Or(r.DrainTimeout, config.Duration(DefaultDrainTimeout))
	r.MaxPairs = cmp.Or(r.MaxPairs, DefaultMaxPairs)
	return r
}

// Config is the relay's configuration for these settings (defaults applied first).
func (r RelaySettings) Config(onDone func(relay.Stats)) relay.Config {
	r = r.WithDefaults()
	// Both proxies give the relay only sockets they accepted or connected non-blocking, or
	// duplicates of net.TCPConn descriptors: the relay need not check them.
	return relay.Config{Loops: r.RelayLoops, IdleTimeout: r.IdleTimeout.D(), FinTimeout: r.FinTimeout.D(), MaxPairs: r.MaxPairs, PipeSize: r.PipeSize, TrustedFDs: true, OnDone: onDone}
}

// Apply gives a running relay the keys a reload changes: idle_timeout and fin_timeout (relayed
// pairs included) and max_pairs (pairs held beyond a lowered cap stay; new ones are refused
// until there is room).
// drain_timeout is read by the proxy when it stops; relay_loops and pipe_size need a restart.
func (r RelaySettings) Apply(rl *relay.Relay) error {
	r = r.WithDefaults()
	if err := rl.SetTimeouts(r.IdleTimeout.D(), r.FinTimeout.D()); err != nil {
		return err
	}
	return rl.SetMaxPairs(r.MaxPairs)
}

// LiveRelayKeys are the keys of RelaySettings a reload applies (Apply, and drain_timeout at stop).
var LiveRelayKeys = []string{"idle_timeout", "fin_timeout", "max_pairs", "drain_timeout"}

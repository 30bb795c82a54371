package private

import (
	"net"
	"strconv"
	"time"

	"epsproxy/engine/relay"
	"epsproxy/internal/config"
)

// Settings is the `private` block of a private proxy's settings.
type Settings struct {
	// InternalEndpoint is the internal server connections go to unless an announcement names
	// its own target.
	InternalEndpoint string `yaml:"internal_endpoint" env:"PRIVATE_INTERNAL_ENDPOINT"`
	// Announce lists the names this proxy serves and the public proxy each is announced to.
	Announce []Announcement `yaml:"announce"`
	// Endpoints optionally pins, per public proxy operator, the only endpoint an
	// incomingConnection from it may name.
	Endpoints map[string]string `yaml:"endpoints"`
	// TerminateTLS, when set, ends the client's TLS here with this certificate and forwards
	// plain HTTP to the internal address. By default TLS passes through untouched.
	TerminateTLS *Terminate `yaml:"terminate_tls"`

	ReannounceEvery config.Duration `yaml:"reannounce_every"`
	DialTimeout     config.Duration `yaml:"dial_timeout"`
	IdleTimeout     config.Duration `yaml:"idle_timeout"`
	// FinTimeout closes a half-closed pair (one side finished sending) after this long without
	// traffic, so a peer that never closes cannot hold it until IdleTimeout.
	FinTimeout   config.Duration `yaml:"fin_timeout"`
	DrainTimeout config.Duration `yaml:"drain_timeout"`
	// Standby is how many sockets are kept dialed in, ahead of any client, at each public proxy
	// this proxy announces to (reserveConnections; see standby.go): a client relayed to one
	// costs no EPS round trip. Default 64; -1 turns them off (dial-backs only). StandbyWait
	// closes and replaces a standby socket no client took in this long (default 2m; a public
	// proxy closes its parked sockets after its own standby_ttl, 1m by default).
	Standby     int             `yaml:"standby"`
	StandbyWait config.Duration `yaml:"standby_wait"`
	// Workers and Queue size the dial-back pool.
	Workers  int `yaml:"workers"`
	Queue    int `yaml:"queue"`
	MaxPairs int `yaml:"max_pairs"`
	// RelayLoops is the number of relay loops moving the bytes (default GOMAXPROCS/2, at least
	// 1). Unless it terminates TLS, the proxy then runs with as many Ps as relay loops.
	RelayLoops int `yaml:"relay_loops"`
}

// Terminate is the certificate the private proxy presents when it terminates TLS.
type Terminate struct {
	CertFile config.Path `yaml:"cert_file"`
	KeyFile  config.Path `yaml:"key_file"`
}

// Announcement is one name served through one public proxy.
type Announcement struct {
	Domain string `yaml:"domain" json:"domain"`
	// Proxy is the public proxy's operator name.
	Proxy string `yaml:"proxy" json:"proxy"`
	// Target is the internal address for this name (default: InternalEndpoint).
	Target    string     `yaml:"target" json:"target,omitempty"`
	ExpiresAt *time.Time `yaml:"expires_at" json:"expires_at,omitempty"`
}

// Defaults of the optional settings.
const (
	DefaultReannounceEvery = 10 * time.Minute
	DefaultDialTimeout     = 5 * time.Second
	DefaultIdleTimeout     = time.Hour
	DefaultFinTimeout      = time.Minute
	DefaultDrainTimeout    = 30 * time.Second
	DefaultWorkers         = 64
	DefaultQueue           = 4096
	DefaultMaxPairs        = 9000
	DefaultStandby         = 64
	DefaultStandbyWait     = 2 * time.Minute
)

// Validate checks the block and fills in defaults.
func (s *Settings) Validate() error {
	if s.InternalEndpoint == "" {
		return config.Errorf("internal_endpoint", "missing: the host:port of the internal server")
	}
	if _, _, err := net.SplitHostPort(s.InternalEndpoint); err != nil {
		return config.Errorf("internal_endpoint", "%v", err)
	}
	for i, a := range s.Announce {
		key := "announce[" + strconv.Itoa(i) + "]"
		if a.Domain == "" {
			return config.Errorf(key+".domain", "missing")
		}
		if a.Proxy == "" {
			return config.Errorf(key+".proxy", "missing: the public proxy's operator name")
		}
		if a.Target != "" {
			if _, _, err := net.SplitHostPort(a.Target); err != nil {
				return config.Errorf(key+".target", "%v", err)
			}
		}
	}
	for op, ep := range s.Endpoints {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return config.Errorf("endpoints."+op, "%v", err)
		}
	}
	if t := s.TerminateTLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		return config.Errorf("terminate_tls", "cert_file and key_file are both required")
	}
	def := func(d *config.Duration, v time.Duration) {
		if *d == 0 {
			*d = config.Duration(v)
		}
	}
	def(&s.ReannounceEvery, DefaultReannounceEvery)
	def(&s.DialTimeout, DefaultDialTimeout)
	def(&s.IdleTimeout, DefaultIdleTimeout)
	def(&s.FinTimeout, DefaultFinTimeout)
	def(&s.DrainTimeout, DefaultDrainTimeout)
	if s.Workers == 0 {
		s.Workers = DefaultWorkers
	}
	if s.Queue == 0 {
		s.Queue = DefaultQueue
	}
	if s.RelayLoops < 0 || s.RelayLoops > relay.MaxLoops {
		return config.Errorf("relay_loops", "%d is out of range: 0 (the default) to %d", s.RelayLoops, relay.MaxLoops)
	}
	if s.MaxPairs == 0 {
		s.MaxPairs = DefaultMaxPairs
	}
	def(&s.StandbyWait, DefaultStandbyWait)
	// -1 stays -1 (off), so that validating twice changes nothing.
	switch {
	case s.Standby == 0:
		s.Standby = DefaultStandby
	case s.Standby < -1 || s.Standby > 4096:
		return config.Errorf("standby", "want -1 (off) to 4096")
	}
	if s.StandbyWait < 0 {
		return config.Errorf("standby_wait", "must not be negative")
	}
	if s.Workers < 1 || s.Workers > 4096 {
		return config.Errorf("workers", "want 1 to 4096")
	}
	if s.Queue < 1 || s.Queue > 1<<20 {
		return config.Errorf("queue", "want 1 to %d", 1<<20)
	}
	return nil
}

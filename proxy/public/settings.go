package public

import (
	"cmp"
	"net"

	"epsproxy/engine"
	"epsproxy/internal/config"
	"epsproxy/proxy"
	"epsproxy/proxy/cluster"
)

// Settings is the `public` block of a public proxy's settings.
type Settings struct {
	// TLSBind is where clients connect; InternalBind where private proxies dial back.
	TLSBind      string `yaml:"tls_bind" env:"PUBLIC_TLS_BIND"`
	InternalBind string `yaml:"internal_bind" env:"PUBLIC_INTERNAL_BIND"`
	// InternalEndpoint is the host:port private proxies are told to dial (default InternalBind).
	InternalEndpoint string `yaml:"internal_endpoint" env:"PUBLIC_INTERNAL_ENDPOINT"`

	HelloTimeout  config.Duration `yaml:"hello_timeout"`
	TokenTimeout  config.Duration `yaml:"token_timeout"`
	AcceptTimeout config.Duration `yaml:"accept_timeout"`
	// Relay holds idle_timeout, fin_timeout, drain_timeout, max_pairs, relay_loops and pipe_size.
	Relay proxy.RelaySettings `yaml:",inline"`
	// Loops is the number of event loops reading hellos and tokens (default GOMAXPROCS/4, at
	// least 1).
	Loops         int `yaml:"loops"`
	MaxHelloConns int `yaml:"max_hello_conns"`
	MaxPending    int `yaml:"max_pending"`
	// Per-source caps (a source is an IPv4 address or an IPv6 /64; -1 = no cap): hello-phase
	// connections one source holds on the public port (default 64), and internal connections
	// that have not sent their token yet, in all (default 1024) and per source (default 64).
	MaxHelloPerSource int `yaml:"max_hello_per_source"`
	MaxTokenConns     int `yaml:"max_token_conns"`
	MaxTokenPerSource int `yaml:"max_token_per_source"`

	// Standby connections (sockets private proxies dial ahead of time, see reserveConnections):
	// StandbyMax caps each operator's reserved tokens plus parked sockets (default 1024, -1
	// disables them); StandbyTTL closes a parked socket unused this long (default 1m);
	// StandbyTokenTTL is how long a reserved token stays valid (default 10m).
	StandbyMax      int             `yaml:"standby_max"`
	StandbyTTL      config.Duration `yaml:"standby_ttl"`
	StandbyTokenTTL config.Duration `yaml:"standby_token_ttl"`
	// GrantCheckEvery is how often the proxy asks its node whether each announcer still holds a
	// grant for its names (default 30s); names whose grant was removed stop matching.
	GrantCheckEvery config.Duration `yaml:"grant_check_every"`

	// Redis, when its addr is set, is where the instances of this public proxy (one operator,
	// several processes, each with its own binds) share their announcements, their internal
	// endpoints and their standby tokens (package proxy/cluster). Without it the proxy keeps its
	// announcements in a file of its own.
	Redis cluster.Settings `yaml:"redis"`

	RateLimits struct {
		Public   Rate `yaml:"public"`
		Internal Rate `yaml:"internal"`
	} `yaml:"rate_limits"`
}

// Rate is a per-source limit: Limit new connections per Window (Limit 0 = none).
type Rate struct {
	Limit  int             `yaml:"limit"`
	Window config.Duration `yaml:"window"`
}

// Validate checks the block. It changes nothing: a zero key means its default (WithDefaults).
func (s Settings) Validate() error {
	for key, addr := range map[string]string{"tls_bind": s.TLSBind, "internal_bind": s.InternalBind} {
		if addr == "" {
			return config.Errorf(key, "missing: a host:port to listen on")
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			return config.Errorf(key, "want host:port with a fixed port, got %q", addr)
		}
	}
	if s.TLSBind == s.InternalBind {
		return config.Errorf("internal_bind", "must differ from tls_bind")
	}
	if s.InternalEndpoint != "" {
		if err := proxy.CheckHostPort(s.InternalEndpoint); err != nil {
			return config.Errorf("internal_endpoint", "%v", err)
		}
	}
	if err := s.Relay.Validate(); err != nil {
		return err
	}
	if s.GrantCheckEvery < 0 {
		return config.Errorf("grant_check_every", "must not be negative")
	}
	for key, d := range map[string]config.Duration{"hello_timeout": s.HelloTimeout, "token_timeout": s.TokenTimeout, "accept_timeout": s.AcceptTimeout} {
		if d < 0 {
			return config.Errorf(key, "must not be negative")
		}
	}
	for key, n := range map[string]int{"max_hello_per_source": s.MaxHelloPerSource, "max_token_conns": s.MaxTokenConns, "max_token_per_source": s.MaxTokenPerSource} {
		if n < -1 || n > 1<<20 {
			return config.Errorf(key, "want -1 (no cap), 0 (the default) or up to %d", 1<<20)
		}
	}
	if s.StandbyMax < -1 || s.StandbyMax > 1<<20 {
		return config.Errorf("standby_max", "want -1 (off) to %d", 1<<20)
	}
	if s.StandbyTTL < 0 {
		return config.Errorf("standby_ttl", "must not be negative")
	}
	if s.StandbyTokenTTL < 0 {
		return config.Errorf("standby_token_ttl", "must not be negative")
	}
	if err := s.Redis.Validate(); err != nil {
		return config.Join("redis", err)
	}
	for key, r := range map[string]Rate{"rate_limits.public": s.RateLimits.Public, "rate_limits.internal": s.RateLimits.Internal} {
		if r.Limit < 0 {
			return config.Errorf(key+".limit", "must not be negative")
		}
		if r.Limit > 0 && r.Window == 0 {
			return config.Errorf(key+".window", "missing: the window the limit applies to, e.g. 1s")
		}
	}
	return nil
}

// WithDefaults returns the block with the defaults this package owns applied: the relay's, and
// internal_endpoint (internal_bind). The engine applies its own for the keys it reads.
func (s Settings) WithDefaults() Settings {
	s.InternalEndpoint = cmp.Or(s.InternalEndpoint, s.InternalBind)
	s.Relay = s.Relay.WithDefaults()
	s.GrantCheckEvery = cmp.Or(s.GrantCheckEvery, config.Duration(proxy.DefaultGrantCheckEvery))
	return s
}

// engineConfig translates the block for the engine.
func (s Settings) engineConfig() engine.Config {
	return engine.Config{
		PublicAddr:        s.TLSBind,
		InternalAddr:      s.InternalBind,
		Loops:             s.Loops,
		HelloTimeout:      s.HelloTimeout.D(),
		TokenTimeout:      s.TokenTimeout.D(),
		AcceptTimeout:     s.AcceptTimeout.D(),
		MaxHelloConns:     s.MaxHelloConns,
		MaxPending:        s.MaxPending,
		MaxHelloPerSource: s.MaxHelloPerSource,
		MaxTokenConns:     s.MaxTokenConns,
		MaxTokenPerSource: s.MaxTokenPerSource,
		MaxStandby:        s.StandbyMax,
		StandbyTTL:        s.StandbyTTL.D(),
		StandbyTokenTTL:   s.StandbyTokenTTL.D(),
		PublicRate:        engine.RateLimit{Limit: s.RateLimits.Public.Limit, Window: s.RateLimits.Public.Window.D()},
		InternalRate:      engine.RateLimit{Limit: s.RateLimits.Internal.Limit, Window: s.RateLimits.Internal.Window.D()},
	}
}

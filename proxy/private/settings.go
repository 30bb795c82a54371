package private

import (
	"cmp"
	"strconv"
	"time"

	"epsproxy/internal/config"
	"epsproxy/matcher"
	"epsproxy/proxy"
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
	// ProxyProtocol is the default of every name's proxy_protocol (Announcement.ProxyProtocol),
	// names added at run time included: "v2" sends each client's addresses to the internal
	// server, "off" or empty (the default) does not.
	ProxyProtocol string `yaml:"proxy_protocol"`

	ReannounceEvery config.Duration `yaml:"reannounce_every"`
	// DialTimeout bounds a connect to the internal server or to a public proxy.
	DialTimeout config.Duration `yaml:"dial_timeout"`
	// Relay holds idle_timeout, fin_timeout, drain_timeout, max_pairs, relay_loops and
	// pipe_size. Unless it terminates TLS, the proxy runs with as many Ps as relay loops.
	Relay proxy.RelaySettings `yaml:",inline"`
	// Standby is how many sockets are kept dialed in, ahead of any client, at each public proxy
	// this proxy announces to (reserveConnections; see standby_pool.go): a client relayed to one
	// costs no EPS round trip. Default 64; -1 turns them off (dial-backs only). StandbyWait
	// closes and replaces a standby socket no client took in this long (default 2m; a public
	// proxy closes its parked sockets after its own standby_ttl, 1m by default).
	Standby     int             `yaml:"standby"`
	StandbyWait config.Duration `yaml:"standby_wait"`
	// StandbyReuse (default true) asks public proxies for framed standby sockets, which carry one
	// client after another (wire.SocketMode.Framed): a client then costs one TCP connection
	// between the proxies fewer. false asks for a socket per client, as before; a public proxy
	// that does not know frames gets that anyway. Applies to tokens reserved from then on.
	StandbyReuse *bool `yaml:"standby_reuse"`
	// Workers and Queue size the dial-back pool.
	Workers int `yaml:"workers"`
	Queue   int `yaml:"queue"`

	// RuntimeTargets lists the targets an operator may name when it adds a name at run time
	// (announceConnection): a host:port, exactly, or a network in CIDR form ("10.1.0.0/16",
	// any port of an IP in it). Empty (the default): none, so run-time names go to
	// InternalEndpoint.
	RuntimeTargets proxy.AddrList `yaml:"runtime_targets"`
	// DialBackEndpoints lists where an incomingConnection may send a dial-back, besides the
	// endpoint pinned for its public proxy (Endpoints) and the endpoint that public proxy's
	// reserveConnections gave: host:port, or a network in CIDR form. Empty by default.
	DialBackEndpoints proxy.AddrList `yaml:"dial_back_endpoints"`
	// MaxNamesPerOperator caps the live names one operator may add at run time (default 1000).
	MaxNamesPerOperator int `yaml:"max_names_per_operator"`
	// GrantCheckEvery is how often the proxy asks its node whether the operators that added
	// names still hold a grant for them (default 30s); names whose grant was removed are
	// withdrawn.
	GrantCheckEvery config.Duration `yaml:"grant_check_every"`
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
	Target string `yaml:"target" json:"target,omitempty"`
	// ProxyProtocol "v2" sends the internal server a PROXY protocol v2 header with the client's
	// address and port and the public proxy's listener address it connected to, before the
	// client's first byte; with terminate_tls, X-Forwarded-For and Forwarded headers with the
	// client's address instead, replacing any the client sent. "off" sends nothing; empty
	// takes the private block's proxy_protocol. Only the settings file sets it: a name added at
	// run time takes the default, so whether a public proxy's standby sockets must carry the
	// addresses is known before any client arrives (see proxyprotocol.go).
	ProxyProtocol string     `yaml:"proxy_protocol" json:"-"`
	ExpiresAt     *time.Time `yaml:"expires_at" json:"expires_at,omitempty"`
	// Owner is the operator that added the name at run time; empty for a name from the
	// settings file. Only the owner may change or withdraw a name.
	Owner string `yaml:"-" json:"owner,omitempty"`
}

// Defaults of the optional settings (the relay's are proxy.RelaySettings').
const (
	DefaultReannounceEvery = 10 * time.Minute
	DefaultDialTimeout     = 5 * time.Second
	DefaultWorkers         = 64
	DefaultQueue           = 4096
	DefaultStandby         = 64
	DefaultStandbyWait     = 2 * time.Minute
	DefaultMaxNames        = 1000
	// MaxMaxNames bounds MaxNamesPerOperator.
	MaxMaxNames = 100000
	// ProxyProtocolV2 and ProxyProtocolOff are the values of proxy_protocol besides empty.
	ProxyProtocolV2  = "v2"
	ProxyProtocolOff = "off"
	// StandbyOff is the value of Standby that turns standby sockets off.
	StandbyOff = -1
	// MaxStandby caps Standby.
	MaxStandby = 4096
)

// Validate checks the block. It changes nothing: a zero key means its default (WithDefaults).
func (s Settings) Validate() error {
	if s.InternalEndpoint == "" {
		return config.Errorf("internal_endpoint", "missing: the host:port of the internal server")
	}
	if err := proxy.CheckHostPort(s.InternalEndpoint); err != nil {
		return config.Errorf("internal_endpoint", "%v", err)
	}
	for i, a := range s.Announce {
		key := "announce[" + strconv.Itoa(i) + "]"
		if a.Domain == "" {
			return config.Errorf(key+".domain", "missing")
		}
		if _, err := matcher.Normalize(a.Domain); err != nil {
			return config.Errorf(key+".domain", "%v", err)
		}
		if a.Proxy == "" {
			return config.Errorf(key+".proxy", "missing: the public proxy's operator name")
		}
		if a.Target != "" {
			if err := proxy.CheckHostPort(a.Target); err != nil {
				return config.Errorf(key+".target", "%v", err)
			}
		}
		if err := checkProxyProtocol(key+".proxy_protocol", a.ProxyProtocol); err != nil {
			return err
		}
	}
	if err := checkProxyProtocol("proxy_protocol", s.ProxyProtocol); err != nil {
		return err
	}
	for op, ep := range s.Endpoints {
		if err := proxy.CheckHostPort(ep); err != nil {
			return config.Errorf("endpoints."+op, "%v", err)
		}
	}
	if t := s.TerminateTLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		return config.Errorf("terminate_tls", "cert_file and key_file are both required")
	}
	if err := s.Relay.Validate(); err != nil {
		return err
	}
	for key, d := range map[string]config.Duration{"reannounce_every": s.ReannounceEvery, "dial_timeout": s.DialTimeout, "standby_wait": s.StandbyWait, "grant_check_every": s.GrantCheckEvery} {
		if d < 0 {
			return config.Errorf(key, "must not be negative")
		}
	}
	if s.Standby < StandbyOff || s.Standby > MaxStandby {
		return config.Errorf("standby", "want %d (off) to %d (0: the default, %d)", StandbyOff, MaxStandby, DefaultStandby)
	}
	if s.Workers < 0 || s.Workers > 4096 {
		return config.Errorf("workers", "want 1 to 4096 (0: the default, %d)", DefaultWorkers)
	}
	if s.Queue < 0 || s.Queue > 1<<20 {
		return config.Errorf("queue", "want 1 to %d (0: the default, %d)", 1<<20, DefaultQueue)
	}
	if err := s.RuntimeTargets.Validate("runtime_targets"); err != nil {
		return err
	}
	if err := s.DialBackEndpoints.Validate("dial_back_endpoints"); err != nil {
		return err
	}
	if s.MaxNamesPerOperator < 0 || s.MaxNamesPerOperator > MaxMaxNames {
		return config.Errorf("max_names_per_operator", "want 1 to %d (0: the default, %d)", MaxMaxNames, DefaultMaxNames)
	}
	return nil
}

// WithDefaults returns the block with every zero key set to its default.
func (s Settings) WithDefaults() Settings {
	s.ReannounceEvery = cmp.Or(s.ReannounceEvery, config.Duration(DefaultReannounceEvery))
	s.DialTimeout = cmp.Or(s.DialTimeout, config.Duration(DefaultDialTimeout))
	s.StandbyWait = cmp.Or(s.StandbyWait, config.Duration(DefaultStandbyWait))
	s.Standby = cmp.Or(s.Standby, DefaultStandby)
	s.Workers = cmp.Or(s.Workers, DefaultWorkers)
	s.Queue = cmp.Or(s.Queue, DefaultQueue)
	s.MaxNamesPerOperator = cmp.Or(s.MaxNamesPerOperator, DefaultMaxNames)
	s.GrantCheckEvery = cmp.Or(s.GrantCheckEvery, config.Duration(proxy.DefaultGrantCheckEvery))
	s.Relay = s.Relay.WithDefaults()
	return s
}

// standbyOn reports whether standby sockets are kept (on settings with defaults applied).
func (s Settings) standbyOn() bool { return s.Standby > 0 }

// standbyReuse is StandbyReuse with its default.
func (s Settings) standbyReuse() bool { return s.StandbyReuse == nil || *s.StandbyReuse }

// checkProxyProtocol checks a proxy_protocol value.
func checkProxyProtocol(key, v string) error {
	switch v {
	case "", ProxyProtocolV2, ProxyProtocolOff:
		return nil
	}
	return config.Errorf(key, "unknown value %q: want %q (send the client's addresses) or %q", v, ProxyProtocolV2, ProxyProtocolOff)
}

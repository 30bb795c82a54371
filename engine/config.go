package engine

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"epsproxy/engine/relay"
	"epsproxy/proxy/wire"
)

// Defaults for Config.
const (
	DefaultHelloTimeout       = 5 * time.Second
	DefaultTokenTimeout       = 5 * time.Second
	DefaultAcceptTimeout      = 10 * time.Second
	DefaultMaxHello           = relay.MaxPrefix - wire.MaxAddressHeader // bytes buffered per client before its hello completes
	DefaultMaxHelloConns      = 10000
	DefaultMaxHelloPerSource  = 64
	DefaultMaxTokenConns      = 1024
	DefaultMaxTokenPerSource  = 64
	DefaultMaxPending         = 10000
	DefaultTick               = 100 * time.Millisecond
	DefaultMaxStandby         = 1024
	DefaultStandbyOps         = 1024
	DefaultStandbyTTL         = time.Minute
	DefaultStandbyTokens      = 10 * time.Minute
	DefaultRefusalLogLines    = 10
	DefaultRefusalLogInterval = 10 * time.Second
)

// Config configures an Engine. Zero values take the defaults.
type Config struct {
	// PublicAddr is where TLS clients connect; InternalAddr is where private proxies dial back.
	PublicAddr   string
	InternalAddr string
	// Loops is the number of event loops (default GOMAXPROCS/4, at least 1). They only see each
	// connection's first bytes (a hello, a token) and hand it on; the relay's loops carry the
	// traffic. Each one blocks a thread in its own epoll_wait, which costs the Go scheduler
	// wake-ups of its own, so fewer loops than cores spend less CPU per connection.
	Loops int
	// HelloTimeout closes a client that has not sent a complete ClientHello in time.
	HelloTimeout time.Duration
	// TokenTimeout closes an internal connection that has not sent its token in time.
	TokenTimeout time.Duration
	// AcceptTimeout closes a matched client whose private side did not dial back in time.
	AcceptTimeout time.Duration
	// MaxHello caps the bytes buffered for a client before handoff (the hello itself is capped
	// by engine/hello at 16 KiB of handshake).
	MaxHello int
	// MaxHelloConns caps connections still in the hello phase; MaxPending caps clients waiting
	// for their private side. Clients beyond either cap are closed at once.
	MaxHelloConns int
	MaxPending    int
	// MaxHelloPerSource caps the hello-phase connections one source holds (default
	// DefaultMaxHelloPerSource, negative = no cap): a source holding that many has its next
	// connection closed at once, so one source cannot take every hello slot. A source is an IPv4
	// address or an IPv6 /64 (internal/netsrc).
	MaxHelloPerSource int
	// MaxTokenConns caps the internal connections that have not presented their token yet, and
	// MaxTokenPerSource those of one source (defaults DefaultMaxTokenConns and
	// DefaultMaxTokenPerSource, negative = no cap): connections that never send a token cannot
	// take the descriptors public clients need. A private proxy sends its token at once, so a
	// legitimate one rarely holds more than a few in this phase.
	MaxTokenConns     int
	MaxTokenPerSource int
	// PublicRate and InternalRate limit new connections per source per window (0 = no limit); a
	// source is an IPv4 address or an IPv6 /64 (internal/netsrc).
	PublicRate   RateLimit
	InternalRate RateLimit
	// FDReserve is how many file descriptors are kept free below RLIMIT_NOFILE for everything
	// that is not a client socket (relay pipes, listeners, the EPS client). New connections are
	// closed at once when the process comes within FDReserve of the limit, so accept never meets
	// EMFILE (which would stop the gnet engine).
	FDReserve int
	// Tick is how often deadlines are swept.
	Tick time.Duration
	// MaxStandby caps each operator's standby connections: tokens reserved and not yet presented
	// plus sockets parked (default DefaultMaxStandby; negative disables standby connections, and
	// Reserve returns ErrStandbyOff). MaxStandbyOperators caps the operators holding any.
	MaxStandby          int
	MaxStandbyOperators int
	// StandbyTTL closes a parked socket no client took in this long; the private side replaces
	// it. StandbyTokenTTL is how long a reserved token may wait to be presented.
	StandbyTTL      time.Duration
	StandbyTokenTTL time.Duration
	// RefusalLogLines is how many refusals of each reason get a log line of their own in each
	// RefusalLogInterval (defaults DefaultRefusalLogLines and DefaultRefusalLogInterval;
	// negative lines: every refusal). The rest are counted, and summed up in one line per reason
	// when the interval ends, so a flood of refusals cannot fill the disk.
	RefusalLogLines    int
	RefusalLogInterval time.Duration
	// Observer, if set, is told what becomes of each connection, for metrics (see Observer).
	Observer Observer
}

// RateLimit allows Limit new connections per source in each Window.
type RateLimit struct {
	Limit  int
	Window time.Duration
}

func (c *Config) fill() error {
	if c.PublicAddr == "" || c.InternalAddr == "" {
		return errors.New("engine: PublicAddr and InternalAddr are required")
	}
	for _, a := range []string{c.PublicAddr, c.InternalAddr} {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "0" {
			return fmt.Errorf("engine: listen address %q: want host:port with a fixed port", a)
		}
	}
	if c.Loops <= 0 {
		c.Loops = max(1, runtime.GOMAXPROCS(0)/4)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HelloTimeout, DefaultHelloTimeout)
	def(&c.TokenTimeout, DefaultTokenTimeout)
	def(&c.AcceptTimeout, DefaultAcceptTimeout)
	def(&c.Tick, DefaultTick)
	def(&c.StandbyTTL, DefaultStandbyTTL)
	def(&c.StandbyTokenTTL, DefaultStandbyTokens)
	def(&c.RefusalLogInterval, DefaultRefusalLogInterval)
	switch {
	case c.MaxStandby == 0:
		c.MaxStandby = DefaultMaxStandby
	case c.MaxStandby < 0:
		c.MaxStandby = 0
	}
	if c.MaxStandbyOperators <= 0 {
		c.MaxStandbyOperators = DefaultStandbyOps
	}
	if c.MaxHello <= 0 {
		c.MaxHello = DefaultMaxHello
	}
	if c.MaxHello > relay.MaxPrefix-wire.MaxAddressHeader {
		// Everything buffered is replayed to the private side through the relay, which takes at
		// most relay.MaxPrefix bytes, behind the address header where the private side asked
		// for it (and reads at most that much); a larger cap would accept clients it then has
		// to drop.
		return fmt.Errorf("engine: MaxHello %d is larger than the relay's replay limit %d less the address header's %d", c.MaxHello, relay.MaxPrefix, wire.MaxAddressHeader)
	}
	if c.MaxHelloConns <= 0 {
		c.MaxHelloConns = DefaultMaxHelloConns
	}
	capOr := func(n *int, v int) {
		switch {
		case *n == 0:
			*n = v
		case *n < 0:
			*n = 0 // off
		}
	}
	capOr(&c.MaxHelloPerSource, DefaultMaxHelloPerSource)
	capOr(&c.MaxTokenConns, DefaultMaxTokenConns)
	capOr(&c.MaxTokenPerSource, DefaultMaxTokenPerSource)
	capOr(&c.RefusalLogLines, DefaultRefusalLogLines)
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.FDReserve <= 0 {
		c.FDReserve = 256
	}
	return nil
}

package haproxy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultMaxConn leaves room for the idle scenario's 9,000 connections while HAProxy's
	// derived fd limit (about two per connection) stays under a 20,000 hard limit.
	DefaultMaxConn = 9500
	// DefaultInspectDelay is how long HAProxy waits for a complete ClientHello.
	DefaultInspectDelay = 5 * time.Second
	// DefaultIdleTimeout is the client and server inactivity timeout; long, so held idle
	// connections are measured, not closed.
	DefaultIdleTimeout = time.Hour
	// DefaultConnectTimeout bounds connecting to a backend server.
	DefaultConnectTimeout = 5 * time.Second
	// MaxRoutes caps the routes of one configuration.
	MaxRoutes = 64
)

// Route sends connections whose SNI is SNI to Addr.
type Route struct {
	SNI  string
	Addr string
}

// Config is one SNI-passthrough HAProxy: one frontend, one backend per route.
type Config struct {
	Bind           string // host:port to listen on
	Routes         []Route
	MaxConn        int           // 0: DefaultMaxConn
	InspectDelay   time.Duration // 0: DefaultInspectDelay
	IdleTimeout    time.Duration // 0: DefaultIdleTimeout
	ConnectTimeout time.Duration // 0: DefaultConnectTimeout
}

// Render returns the configuration file, or an error naming the first bad field. Names and
// addresses are checked strictly because they are pasted into HAProxy's syntax. It only reads c:
// safe from any goroutine.
func (c Config) Render() ([]byte, error) {
	if err := checkAddr(c.Bind); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if len(c.Routes) == 0 || len(c.Routes) > MaxRoutes {
		return nil, fmt.Errorf("routes: %d, want 1 to %d", len(c.Routes), MaxRoutes)
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		if err := checkSNI(r.SNI); err != nil {
			return nil, fmt.Errorf("routes[%d].sni: %w", i, err)
		}
		if seen[r.SNI] {
			return nil, fmt.Errorf("routes[%d].sni: %q listed twice", i, r.SNI)
		}
		seen[r.SNI] = true
		if err := checkAddr(r.Addr); err != nil {
			return nil, fmt.Errorf("routes[%d].addr: %w", i, err)
		}
	}
	if c.MaxConn == 0 {
		c.MaxConn = DefaultMaxConn
	}
	if c.MaxConn < 1 || c.MaxConn > 1_000_000 {
		return nil, fmt.Errorf("maxconn %d out of range", c.MaxConn)
	}
	def := func(d *time.Duration, v time.Duration) error {
		if *d == 0 {
			*d = v
		}
		if *d < time.Millisecond {
			return fmt.Errorf("timeout %v too short", *d)
		}
		return nil
	}
	for _, p := range []struct {
		d *time.Duration
		v time.Duration
	}{{&c.InspectDelay, DefaultInspectDelay}, {&c.IdleTimeout, DefaultIdleTimeout}, {&c.ConnectTimeout, DefaultConnectTimeout}} {
		if err := def(p.d, p.v); err != nil {
			return nil, err
		}
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by the epsproxy benchmark: TLS passthrough routed by SNI.\n")
	fmt.Fprintf(&b, "global\n    maxconn %d\n\n", c.MaxConn)
	fmt.Fprintf(&b, "defaults\n    mode tcp\n    maxconn %d\n    timeout connect %s\n    timeout client %s\n    timeout server %s\n\n",
		c.MaxConn, ms(c.ConnectTimeout), ms(c.IdleTimeout), ms(c.IdleTimeout))
	fmt.Fprintf(&b, "frontend sni\n    bind %s\n    tcp-request inspect-delay %s\n    tcp-request content accept if { req.ssl_hello_type 1 }\n", c.Bind, ms(c.InspectDelay))
	for i, r := range c.Routes {
		fmt.Fprintf(&b, "    use_backend route%d if { req.ssl_sni -i %s }\n", i, r.SNI)
	}
	for i, r := range c.Routes {
		fmt.Fprintf(&b, "\nbackend route%d\n    server s%d %s\n", i, i, r.Addr)
	}
	return []byte(b.String()), nil
}

// checkSNI accepts a DNS name of letters, digits, hyphens and dots (no wildcard, no spaces).
func checkSNI(s string) error {
	if s == "" || len(s) > 253 {
		return errors.New("want a DNS name of 1 to 253 characters")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("bad label %q in %q", label, s)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("character %q in %q", r, s)
			}
		}
	}
	return nil
}

// checkAddr accepts IP:port only: HAProxy would resolve a host name at start, and the benchmark
// only ever uses loopback addresses.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("%q: want an IP address", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q", port)
	}
	return nil
}

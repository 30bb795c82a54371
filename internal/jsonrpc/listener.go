package jsonrpc

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"epsproxy/internal/netsrc"
)

// Connection caps of the signaling network's listeners. A peer needs one or two connections (an
// HTTP/2 client multiplexes its calls, and each connection carries at most
// MaxConcurrentStreams calls at once), so a source with many more is a flood, not a peer.
const (
	// MaxConnsPerSource caps the connections one source holds open at once; a source is
	// netsrc's: an IPv4 address or an IPv6 /64.
	MaxConnsPerSource = 32
	// MaxConns caps all connections open at once.
	MaxConns = 4096
	// MaxConcurrentStreams caps the calls in flight on one HTTP/2 connection.
	MaxConcurrentStreams = 256
)

// LimitListener wraps ln so that connections beyond perSource from one source, or beyond total in
// all, are closed as soon as they are accepted, before a TLS handshake or a byte is read.
// Refused counts them.
func LimitListener(ln net.Listener, perSource, total int) *Limited {
	return &Limited{Listener: ln, perSource: perSource, total: total, open: map[netip.Prefix]int{}}
}

// Limited is a listener with connection caps (LimitListener).
type Limited struct {
	net.Listener
	perSource, total int
	refused          atomic.Int64

	mu   sync.Mutex
	all  int
	open map[netip.Prefix]int // open connections per source; no entry at zero
}

// Refused is the number of connections closed for a cap.
func (l *Limited) Refused() int64 { return l.refused.Load() }

// Accept returns the next connection within the caps.
func (l *Limited) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := netsrc.Source(c.RemoteAddr())
		l.mu.Lock()
		if l.all >= l.total || l.open[src] >= l.perSource {
			l.mu.Unlock()
			l.refused.Add(1)
			c.Close()
			continue
		}
		l.all++
		l.open[src]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, src: src}, nil
	}
}

func (l *Limited) release(src netip.Prefix) {
	l.mu.Lock()
	l.all--
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
	l.mu.Unlock()
}

type limitedConn struct {
	net.Conn
	l    *Limited
	src  netip.Prefix
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.src) })
	return c.Conn.Close()
}

package private

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"epsproxy/engine/relay"
)

// terminator ends the client's TLS at the private proxy and forwards plain HTTP to the internal
// address, for internal servers that do not speak TLS. One http.Server serves every terminated
// connection: dial-backs are fed to it through an in-process listener, each tagged with its
// target. Unlike the original, keep-alive works (many requests per connection), bodies stream
// rather than being buffered, and hop-by-hop headers are not forwarded (httputil.ReverseProxy).
//
// Every terminated connection counts against the relay's pair cap (max_pairs) and is closed
// when no byte has moved either way for the relay's idle timeout, on top of the HTTP server's own
// header and keep-alive timeouts.
//
// Each request goes out with X-Forwarded-Host, X-Forwarded-Proto and X-Forwarded-For; whatever
// Forwarded and X-Forwarded-* headers the client sent are dropped. For a name set to
// proxy_protocol "v2", X-Forwarded-For and Forwarded (RFC 7239: for=...;proto=https) name the
// client's address; otherwise X-Forwarded-For names the public proxy's (the connection's peer),
// as it always did, and no Forwarded header is sent.
type terminator struct {
	srv    *http.Server
	ln     *feedListener
	relay  *relay.Relay // whose idle timeout and pair cap, as they stand, apply
	active atomic.Int64
}

// errTerminatorFull: the pair cap is reached; the connection is closed.
var errTerminatorFull = errors.New("private: too many connections (max_pairs)")

// targetConn is a terminated client connection, the internal address its requests go to, and
// the client address they name (invalid: none).
type targetConn struct {
	net.Conn
	connInfo
}

// connInfo is what the requests of one terminated connection are forwarded with.
type connInfo struct {
	target string
	client netip.Addr
}

type ctxKey struct{}

// newTerminator serves terminated connections, under rl's idle timeout and pair cap as they
// stand when each connection arrives; dial connects to the internal servers.
func newTerminator(cert tls.Certificate, dial func(ctx context.Context, network, addr string) (net.Conn, error), rl *relay.Relay, log *slog.Logger) *terminator {
	t := &terminator{ln: newFeedListener(), relay: rl}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			info, _ := r.In.Context().Value(ctxKey{}).(connInfo)
			r.SetURL(&url.URL{Scheme: "http", Host: info.target})
			r.Out.Host = r.In.Host
			r.SetXForwarded()
			if info.client.IsValid() {
				setClientHeaders(r.Out.Header, info.client)
			}
		},
		Transport: &http.Transport{
			DialContext:         dial,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	t.srv = &http.Server{
		Handler:           rp,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if ic, ok := tc.NetConn().(*idleConn); ok {
					return context.WithValue(ctx, ctxKey{}, ic.connInfo)
				}
			}
			return ctx
		},
	}
	go func() { _ = t.srv.ServeTLS(t.ln, "", "") }()
	return t
}

// serve hands a dialled-back connection to the HTTP server, unless the pair cap is reached; its
// requests go to target and name client (if valid) as the client.
func (t *terminator) serve(c net.Conn, target string, client netip.Addr) error {
	if int64(t.relay.MaxPairs()-t.relay.Pairs()) <= t.active.Load() {
		return errTerminatorFull
	}
	t.active.Add(1)
	idle, _ := t.relay.Timeouts()
	ic := &idleConn{targetConn: targetConn{Conn: c, connInfo: connInfo{target: target, client: client}}, idle: idle, done: func() { t.active.Add(-1) }}
	if err := t.ln.feed(ic); err != nil {
		ic.release()
		return err
	}
	return nil
}

// connections is the number of terminated connections open.
func (t *terminator) connections() int { return int(t.active.Load()) }

func (t *terminator) shutdown(ctx context.Context) error { return t.srv.Shutdown(ctx) }

// idleConn closes a terminated connection on which nothing moved for idle: each read and each
// write must make progress within idle, or by the deadline the HTTP server set, whichever is
// sooner.
type idleConn struct {
	targetConn
	idle time.Duration
	done func()
	once sync.Once

	mu                    sync.Mutex
	readOuter, writeOuter time.Time // deadlines the HTTP server set
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	d := sooner(c.readOuter, c.idle)
	c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(d)
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	d := sooner(c.writeOuter, c.idle)
	c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(d)
	return c.Conn.Write(b)
}

func (c *idleConn) SetDeadline(d time.Time) error {
	c.mu.Lock()
	c.readOuter, c.writeOuter = d, d
	c.mu.Unlock()
	return nil
}

func (c *idleConn) SetReadDeadline(d time.Time) error {
	c.mu.Lock()
	c.readOuter = d
	c.mu.Unlock()
	return nil
}

func (c *idleConn) SetWriteDeadline(d time.Time) error {
	c.mu.Lock()
	c.writeOuter = d
	c.mu.Unlock()
	return nil
}

func (c *idleConn) Close() error {
	c.release()
	return c.Conn.Close()
}

func (c *idleConn) release() { c.once.Do(c.done) }

// sooner is the earlier of outer (zero: none) and idle from now (zero: none).
func sooner(outer time.Time, idle time.Duration) time.Time {
	if idle <= 0 {
		return outer
	}
	d := time.Now().Add(idle)
	if !outer.IsZero() && outer.Before(d) {
		return outer
	}
	return d
}

// feedListener is a net.Listener whose connections are handed to it in-process.
type feedListener struct {
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newFeedListener() *feedListener {
	return &feedListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

var errListenerClosed = errors.New("listener closed")

func (l *feedListener) feed(c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.closed:
		return errListenerClosed
	}
}

func (l *feedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *feedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *feedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// setClientHeaders names client as the request's client: X-Forwarded-For, and Forwarded as RFC
// 7239 writes it (an IPv6 address bracketed and quoted), with proto=https since the client's
// connection was TLS; any value either header had is replaced.
func setClientHeaders(h http.Header, client netip.Addr) {
	client = client.Unmap().WithZone("")
	h.Set("X-Forwarded-For", client.String())
	node := client.String()
	if client.Is6() {
		node = `"[` + node + `]"`
	}
	h.Set("Forwarded", "for="+node+";proto=https")
}

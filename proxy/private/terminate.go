package private

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// terminator ends the client's TLS at the private proxy and forwards plain HTTP to the internal
// address, for internal servers that do not speak TLS. One http.Server serves every terminated
// connection: dial-backs are fed to it through an in-process listener, each tagged with its
// target. Unlike the original, keep-alive works (many requests per connection), bodies stream
// rather than being buffered, and hop-by-hop headers are not forwarded (httputil.ReverseProxy).
type terminator struct {
	srv *http.Server
	ln  *feedListener
}

// targetConn is a terminated client connection and the internal address its requests go to.
type targetConn struct {
	net.Conn
	target string
}

type ctxKey struct{}

func newTerminator(cert tls.Certificate, dialer *net.Dialer, log *slog.Logger) *terminator {
	t := &terminator{ln: newFeedListener()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			target, _ := r.In.Context().Value(ctxKey{}).(string)
			r.SetURL(&url.URL{Scheme: "http", Host: target})
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
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
				if t, ok := tc.NetConn().(*targetConn); ok {
					return context.WithValue(ctx, ctxKey{}, t.target)
				}
			}
			return ctx
		},
	}
	go func() { _ = t.srv.ServeTLS(t.ln, "", "") }()
	return t
}

// serve hands a dialled-back connection to the HTTP server.
func (t *terminator) serve(c net.Conn, target string) error {
	return t.ln.feed(&targetConn{Conn: c, target: target})
}

func (t *terminator) shutdown(ctx context.Context) error { return t.srv.Shutdown(ctx) }

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

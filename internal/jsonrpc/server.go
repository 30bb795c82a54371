package jsonrpc

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// NewHTTPServer returns an HTTPS server (HTTP/2 and HTTP/1.1) for a JSON-RPC handler, with
// bounded header and body read times. Client certificates are verified when presented but not
// demanded by the handshake: the handlers refuse a call without one with a JSON-RPC error, so a
// caller learns why instead of seeing a failed handshake. tc is modified.
func NewHTTPServer(h http.Handler, tc *tls.Config, writeTimeout time.Duration, log *slog.Logger) *http.Server {
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	tc.NextProtos = []string{"h2", "http/1.1"}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	return &http.Server{
		Handler:           h,
		TLSConfig:         tc,
		Protocols:         &p,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: MaxConcurrentStreams},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// NewTransport returns an HTTP/2-only client transport over TLS config tc. HTTP/2 matters beyond
// multiplexing: its connection pool makes concurrent first requests share one dial, where the
// HTTP/1 path would open (and handshake) a connection per waiting request. dial may be nil.
func NewTransport(tc *tls.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	var p http.Protocols
	p.SetHTTP2(true)
	return &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     tc,
		Protocols:           &p,
		ForceAttemptHTTP2:   true,
		MaxConnsPerHost:     2,
		TLSHandshakeTimeout: 5 * time.Second,
		IdleConnTimeout:     5 * time.Minute,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 15 * time.Second,
			PingTimeout:     5 * time.Second,
		},
	}
}

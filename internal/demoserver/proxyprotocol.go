package demoserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// ProxyProtocol is what the server does with a PROXY protocol header in front of a
// connection, as a private proxy sends one for a name set to proxy_protocol: v2.
type ProxyProtocol int

const (
	// ProxyOff: no header is expected (one would fail the TLS handshake). The default.
	ProxyOff ProxyProtocol = iota
	// ProxyRequired: every connection starts with a version 2 header; one without is closed.
	ProxyRequired
	// ProxyOptional: a version 2 header is read when there is one.
	ProxyOptional
)

// ProxyProtocolNames are the values ParseProxyProtocol takes, by mode.
var ProxyProtocolNames = map[ProxyProtocol]string{ProxyOff: "off", ProxyRequired: "required", ProxyOptional: "optional"}

// ParseProxyProtocol reads a mode by its name ("off", "required", "optional").
func ParseProxyProtocol(name string) (ProxyProtocol, error) {
	for m, n := range ProxyProtocolNames {
		if n == name {
			return m, nil
		}
	}
	return ProxyOff, fmt.Errorf("proxy protocol %q: want off, required or optional", name)
}

// proxyHeaderTimeout bounds the wait for a connection's PROXY header.
const proxyHeaderTimeout = 5 * time.Second

// proxyListener reads the PROXY header of each connection ln accepts, by mode; version 1
// headers are refused.
func proxyListener(ln net.Listener, mode ProxyProtocol) net.Listener {
	policy := proxyproto.REQUIRE
	if mode == ProxyOptional {
		policy = proxyproto.USE
	}
	return &proxyproto.Listener{
		Listener:          ln,
		ConnPolicy:        func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return policy, nil },
		ValidateHeader:    func(h *proxyproto.Header) error { return versionTwo(h) },
		ReadHeaderTimeout: proxyHeaderTimeout,
	}
}

func versionTwo(h *proxyproto.Header) error {
	if h.Version != 2 {
		return fmt.Errorf("PROXY protocol version %d: only version 2 is accepted", h.Version)
	}
	return nil
}

type headerKey struct{}

// withProxyHeader keeps a connection's PROXY header in its requests' context.
func withProxyHeader(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if pc, ok := tc.NetConn().(*proxyproto.Conn); ok {
			return context.WithValue(ctx, headerKey{}, pc)
		}
	}
	return ctx
}

// logRequest logs a request with its client's address: from the PROXY header if the
// connection had one that named the client (proxy_header=true), else the connection's peer.
func (s *Server) logRequest(r *http.Request) {
	attrs := []any{"method", r.Method, "host", r.Host, "path", r.URL.Path, "client", r.RemoteAddr}
	named := false
	if pc, ok := r.Context().Value(headerKey{}).(*proxyproto.Conn); ok {
		if h := pc.ProxyHeader(); h != nil && h.Command.IsProxy() {
			named = true
			attrs = append(attrs, "destination", h.DestinationAddr.String())
		}
	}
	s.log.Info("request", append(attrs, "proxy_header", named)...)
}

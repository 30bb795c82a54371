// Package demoserver is the internal server of the demo and of the end-to-end tests: a TLS
// JSON-RPC-ish endpoint that answers GET /jsonrpc with {"message": "success"} and echoes a POSTed
// JSON body. It stands for whatever service an operator keeps behind the private proxy, so it
// must not know anything of the proxies: it sees only the client's TLS connection, and, if told
// to accept one (SetProxyProtocol), the PROXY protocol header in front of it, whose client
// address it then logs with each request.
package demoserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// maxBody caps a POSTed body.
const maxBody = 1 << 20

// Server is the demo internal server.
type Server struct {
	addr  string
	srv   *http.Server
	ln    net.Listener
	log   *slog.Logger
	proxy ProxyProtocol
	// accepted counts TCP connections accepted, so tests can show that none arrived.
	accepted atomic.Int64
}

// New loads the key pair and prepares a server for addr.
func New(addr, certFile, keyFile string, log *slog.Logger) (*Server, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s / %s: %w", certFile, keyFile, err)
	}
	s := &Server{addr: addr, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("/jsonrpc", s.jsonrpc)
	s.srv = &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// SetProxyProtocol says what to do with a PROXY protocol header in front of a connection
// (ProxyOff by default); with ProxyRequired or ProxyOptional, each request is logged with its
// client's address. Call it before Start.
func (s *Server) SetProxyProtocol(mode ProxyProtocol) {
	s.proxy = mode
	if mode != ProxyOff {
		s.srv.ConnContext = withProxyHeader
	}
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.ln = countingListener{ln, &s.accepted}
	if s.proxy != ProxyOff {
		s.ln = proxyListener(s.ln, s.proxy)
	}
	go func() {
		if err := s.srv.ServeTLS(s.ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "err", err)
		}
	}()
	if s.proxy != ProxyOff {
		s.log.Info("listening", "addr", ln.Addr().String(), "proxy_protocol", ProxyProtocolNames[s.proxy])
	} else {
		s.log.Info("listening", "addr", ln.Addr().String())
	}
	return nil
}

// Addr is the listening address after Start.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Accepted is the number of TCP connections accepted so far.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// Stop shuts the server down gracefully.
func (s *Server) Stop(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func (s *Server) jsonrpc(w http.ResponseWriter, r *http.Request) {
	if s.proxy != ProxyOff {
		s.logRequest(r)
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodGet:
		_, _ = io.WriteString(w, "{\"message\": \"success\"}\n")
	case http.MethodPost:
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
			return
		}
		if !json.Valid(body) {
			writeError(w, http.StatusBadRequest, "the body is not JSON")
			return
		}
		_, _ = w.Write(body)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "use GET or POST")
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

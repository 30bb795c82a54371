package epsclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
)

// Handler serves one method. A returned error that is a *jsonrpc.Error (or has a Code() int
// method) keeps its code; any other error is an internal error.
type Handler func(ctx context.Context, c *Call) (any, error)

// Typed adapts a handler that takes its params decoded: the call's params are decoded into a P
// with Decode (unknown fields refused, an invalid-params error that says what is wrong) before
// f runs, so no handler repeats that step or forgets it.
func Typed[P any](f func(ctx context.Context, c *Call, params P) (any, error)) Handler {
	return func(ctx context.Context, c *Call) (any, error) {
		var params P
		if err := c.Decode(&params); err != nil {
			return nil, err
		}
		return f(ctx, c, params)
	}
}

// Call is one delivered call.
type Call struct {
	Method string
	// Params are the call's params without the `_client` object.
	Params json.RawMessage
	// Caller is who called, as stated by this operator's node.
	Caller Caller
}

// Caller is the `_client` object: the calling operator and its directory entry.
type Caller struct {
	Name  string          `json:"name"`
	Entry directory.Entry `json:"entry"`
}

// Decode decodes the params into v, refusing unknown fields, and returns an invalid-params error
// that says what is wrong.
func (c *Call) Decode(v any) error {
	if len(c.Params) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.Params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "params of %s: %v", c.Method, err)
	}
	return nil
}

// Server is the JSON-RPC endpoint this operator's node delivers calls to.
type Server struct {
	operator string
	pins     []string
	log      *slog.Logger
	mu       sync.RWMutex
	handlers map[string]Handler
	srv      *http.Server
	ln       net.Listener
}

// NewServer returns a server for operator with no handlers.
func NewServer(operator string, log *slog.Logger) *Server {
	return &Server{operator: operator, log: log, handlers: map[string]Handler{}}
}

// Pin makes the server take calls only from a node certificate with one of these fingerprints
// (eps.pins). Call it before Start.
func (s *Server) Pin(fingerprints []string) { s.pins = fingerprints }

// Handle registers h for method. Safe to call at any time.
func (s *Server) Handle(method string, h Handler) {
	s.mu.Lock()
	s.handlers[method] = h
	s.mu.Unlock()
}

// Start listens on addr with TLS identity id and serves path until Shutdown.
func (s *Server) Start(addr, path string, id *config.Identity) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("EPS endpoint on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(path, s)
	s.srv = jsonrpc.NewHTTPServer(mux, id.ServerConfig(), 30*time.Second, s.log)
	s.ln = ln
	limited := jsonrpc.LimitListener(ln, jsonrpc.MaxConnsPerSource, jsonrpc.MaxConns)
	go func() {
		if err := s.srv.Serve(tls.NewListener(limited, s.srv.TLSConfig)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("EPS endpoint stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the listening address after Start.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the endpoint, letting calls in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// ServeHTTP serves one delivered call. Who calls is checked before a byte of the body is read:
// only this operator's own node, by the exact name of its certificate.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, leaf, err := config.VerifiedOperator(r.TLS)
	if err == nil && name != s.operator {
		err = fmt.Errorf("the client certificate is for %q", name)
	}
	if err == nil {
		err = pinned(s.pins, leaf)
	}
	if err != nil {
		s.log.Warn("EPS call refused: not from this operator's node", "remote", r.RemoteAddr, "err", err)
		jsonrpc.Refuse(w, r, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "only the EPS node of %s may call this endpoint: %v", s.operator, err))
		return
	}
	req := jsonrpc.Accept(w, r, jsonrpc.MaxBody)
	if req == nil {
		return
	}
	id := req.ID
	s.mu.RLock()
	h := s.handlers[req.Method]
	s.mu.RUnlock()
	if h == nil {
		jsonrpc.WriteError(w, id, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "%s has no method %q", s.operator, req.Method))
		return
	}
	call, e := splitClient(req)
	if e != nil {
		jsonrpc.WriteError(w, id, e)
		return
	}
	res, err := h(r.Context(), call)
	if err != nil {
		e := jsonrpc.AsError(err)
		s.log.Debug("EPS call failed", "method", req.Method, "caller", call.Caller.Name, "code", e.Code, "err", e.Message)
		jsonrpc.WriteError(w, id, e)
		return
	}
	jsonrpc.WriteResult(w, id, res)
}

// splitClient takes the node's `_client` object out of the params.
func splitClient(req *jsonrpc.Request) (*Call, *jsonrpc.Error) {
	fields := map[string]json.RawMessage{}
	if len(req.Params) > 0 && string(req.Params) != "null" {
		if err := json.Unmarshal(req.Params, &fields); err != nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "params must be an object: %v", err)
		}
	}
	raw, ok := fields["_client"]
	if !ok {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "call carries no _client object: calls must come through the EPS node")
	}
	call := &Call{Method: req.Method}
	if err := json.Unmarshal(raw, &call.Caller); err != nil || call.Caller.Name == "" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "malformed _client object")
	}
	delete(fields, "_client")
	params, err := json.Marshal(fields)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "re-encoding params: %v", err)
	}
	call.Params = params
	return call, nil
}

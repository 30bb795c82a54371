package testnet

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
)

// Answer answers one JSON-RPC call to a node stand-in: method is "<operator>.<method>", body the
// whole request (bounded by jsonrpc.MaxBody).
type Answer func(method string, params json.RawMessage, body []byte) (any, *jsonrpc.Error)

// NodeStandIn serves JSON-RPC over real mutual TLS with id (an operator's identity, as its node
// holds it) and answers every call with answer, so a proxy's EPS client can be tested against
// the node's answers without running a node. It returns the URL for epsclient.Settings.Node and
// stops when the test ends.
func NodeStandIn(t testing.TB, id *config.Identity, answer Answer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4*jsonrpc.MaxBody))
		var req jsonrpc.Request
		if err := json.Unmarshal(body, &req); err != nil {
			jsonrpc.WriteError(w, nil, jsonrpc.Errorf(jsonrpc.CodeParseError, "%v", err))
			return
		}
		res, e := answer(req.Method, req.Params, body)
		if e != nil {
			jsonrpc.WriteError(w, req.ID, e)
			return
		}
		jsonrpc.WriteResult(w, req.ID, res)
	})
	srv := jsonrpc.NewHTTPServer(h, id.ServerConfig(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String() + "/jsonrpc"
}

package private

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

const self = "priv.test"

// node stands in for the private proxy's EPS node and the public proxies behind it, over real
// mutual TLS: it answers announceConnections for the public proxies it knows (taking every
// name but those in taken), says 404 for any other operator, and records what it got.
type node struct {
	known map[string]bool // public proxies the directory knows

	mu     sync.Mutex
	taken  map[string]bool  // names another private proxy holds at every public proxy (409)
	bodies []int            // request body sizes
	names  map[string]int   // name -> times announced
	calls  map[string][]int // "operator.method" -> names per call
}

func (n *node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4*jsonrpc.MaxBody))
	var req struct {
		Method string              `json:"method"`
		Params wire.AnnounceParams `json:"params"`
		ID     json.RawMessage     `json:"id"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := jsonrpc.Response{JSONRPC: jsonrpc.Version, ID: req.ID}
	op, method, _ := strings.Cut(req.Method, "."+wire.AnnounceConnections)
	n.mu.Lock()
	n.bodies = append(n.bodies, len(body))
	n.calls[req.Method] = append(n.calls[req.Method], len(req.Params.Connections))
	switch {
	case method != "" || !n.known[op]:
		resp.Error = jsonrpc.Errorf(jsonrpc.CodeNotFound, "unknown operator %s", op)
	default:
		results := make([]*jsonrpc.Error, len(req.Params.Connections))
		for i, a := range req.Params.Connections {
			n.names[a.Domain]++
			if n.taken[a.Domain] {
				results[i] = jsonrpc.Errorf(jsonrpc.CodeConflict, "%s is held by another operator", a.Domain)
			}
		}
		resp.Result, _ = json.Marshal(results)
	}
	n.mu.Unlock()
	_ = json.NewEncoder(w).Encode(resp)
}

// newProxy builds a private proxy (not started) whose EPS client talks to a node stand-in that
// knows the public proxies pub.test and pub2.test.
func newProxy(t *testing.T, s Settings, dataDir string) *Proxy {
	p, _ := newProxyAndNode(t, s, dataDir)
	return p
}

func newProxyAndNode(t *testing.T, s Settings, dataDir string) (*Proxy, *node) {
	t.Helper()
	pk := testnet.NewPKI(t, self)
	id := pk.Identity(t, self)
	nd := &node{known: map[string]bool{"pub.test": true, "pub2.test": true}, taken: map[string]bool{}, names: map[string]int{}, calls: map[string][]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := jsonrpc.NewHTTPServer(nd, id.ServerConfig(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
	t.Cleanup(func() { srv.Close() })

	base := proxy.Base{Name: self, Identity: id, DataDir: dataDir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	base.EPS = epsclient.Settings{Node: "https://" + ln.Addr().String() + "/jsonrpc", Listen: "127.0.0.1:0"}.WithDefaults()
	px, err := New(base, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.relay.Close(); px.client.Close() })
	return px, nd
}

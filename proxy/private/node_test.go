package private

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"epsproxy/eps/directory"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

const self = "priv.test"

// node stands in for the private proxy's EPS node and the public proxies behind it: it answers
// announceConnections for the public proxies it knows (taking every name but those in taken),
// says 404 for any other operator, answers the directory lookup from grants, and records what it
// got.
type node struct {
	known map[string]bool // public proxies the directory knows

	mu     sync.Mutex
	taken  map[string]bool     // names another private proxy holds at every public proxy (409)
	grants map[string][]string // operator -> allowed_domains for this proxy (nil: not in the directory)
	bodies []int               // request body sizes
	names  map[string]int      // name -> times announced
	calls  map[string][]int    // "operator.method" -> names per call
}

func (n *node) answer(method string, params json.RawMessage, body []byte) (any, *jsonrpc.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if method == self+"."+directory.LookupMethod {
		var ps directory.LookupParams
		_ = json.Unmarshal(params, &ps)
		res := directory.LookupResult{}
		for _, op := range ps.Operators {
			if g, ok := n.grants[op]; ok {
				res[op] = &directory.Entry{Name: op, Settings: []directory.Setting{{Service: wire.Service, Operator: self, Settings: map[string]any{"allowed_domains": g}}}}
			} else {
				res[op] = nil
			}
		}
		return res, nil
	}
	var ps wire.AnnounceParams
	_ = json.Unmarshal(params, &ps)
	n.bodies = append(n.bodies, len(body))
	n.calls[method] = append(n.calls[method], len(ps.Connections))
	op, rest, _ := strings.Cut(method, "."+wire.AnnounceConnections)
	if rest != "" || !n.known[op] {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotFound, "unknown operator %s", op)
	}
	results := make([]*jsonrpc.Error, len(ps.Connections))
	for i, a := range ps.Connections {
		n.names[a.Domain]++
		if n.taken[a.Domain] {
			results[i] = jsonrpc.Errorf(jsonrpc.CodeConflict, "%s is held by another operator", a.Domain)
		}
	}
	return results, nil
}

// newProxy builds a private proxy (not started) whose EPS client talks to a node stand-in that
// knows the public proxies pub.test and pub2.test.
func newProxy(t *testing.T, s Settings, dataDir string) *Proxy {
	p, _ := newProxyAndNode(t, s, dataDir)
	return p
}

func newProxyAndNode(t *testing.T, s Settings, dataDir string) (*Proxy, *node) {
	t.Helper()
	id := testnet.NewPKI(t, self).Identity(t, self)
	nd := &node{known: map[string]bool{"pub.test": true, "pub2.test": true}, taken: map[string]bool{},
		grants: map[string][]string{}, names: map[string]int{}, calls: map[string][]int{}}
	base := proxy.Base{Name: self, Identity: id, DataDir: dataDir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	base.EPS = epsclient.Settings{Node: testnet.NodeStandIn(t, id, nd.answer), Listen: "127.0.0.1:0"}.WithDefaults()
	px, err := New(base, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.relay.Close(); px.client.Close() })
	return px, nd
}

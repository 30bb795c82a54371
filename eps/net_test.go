package eps_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"epsproxy/eps"
	"epsproxy/eps/directory"
	"epsproxy/epsclient"
	"epsproxy/internal/config"
	"epsproxy/internal/testnet"
)

// The test network: alpha calls beta; gamma is in a group beta does not admit.
const (
	alpha = "alpha.test"
	beta  = "beta.test"
	gamma = "gamma.test"
)

type testNet struct {
	pki      *testnet.PKI
	dir      string
	peers    map[string]string // operator -> peer address
	nodes    map[string]*eps.Node
	services map[string]*epsclient.Server
	clients  map[string]*epsclient.Client
	timeout  time.Duration // the nodes' call timeout
	// prepare, if set, runs on each node between New and Start.
	prepare func(op string, node *eps.Node)
}

func quietLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

const directoryTemplate = `
operators:
  alpha.test:
    groups: [callers]
    node: {address: "%s"}
    settings:
      - service: demo
        operator: beta.test
        settings: {allowed_domains: [".alpha.example"]}
  beta.test:
    groups: [servers]
    node: {address: "%s"}
    services:
      - name: demo
        methods:
          - {name: echo, groups: [callers]}
          - {name: slow, groups: [callers]}
          - {name: secret, groups: [admins]}
  gamma.test:
    groups: [outsiders]
    node: {address: "%s"}
`

// newNet starts nodes and services for the given operators (all three are in the directory).
func newNet(t testing.TB, start ...string) *testNet {
	t.Helper()
	n := &testNet{
		pki:      testnet.NewPKI(t, alpha, beta, gamma),
		dir:      t.TempDir(),
		peers:    map[string]string{},
		nodes:    map[string]*eps.Node{},
		services: map[string]*epsclient.Server{},
		clients:  map[string]*epsclient.Client{},
		timeout:  2 * time.Second,
	}
	for _, op := range []string{alpha, beta, gamma} {
		n.peers[op] = testnet.FreeAddr(t)
	}
	n.writeDirectory(t, "")
	for _, op := range start {
		n.start(t, op)
	}
	return n
}

func (n *testNet) writeDirectory(t testing.TB, extra string) {
	t.Helper()
	body := fmt.Sprintf(directoryTemplate, n.peers[alpha], n.peers[beta], n.peers[gamma]) + extra
	if err := os.WriteFile(filepath.Join(n.dir, "001_directory.yml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (n *testNet) settings(op string) eps.Settings {
	var s eps.Settings
	s.Name = op
	s.TLS = n.pki.TLS(op)
	s.Peer.Bind = n.peers[op]
	s.Local.Bind = "127.0.0.1:0"
	s.Directory.Paths = []config.Path{config.Path(n.dir)}
	s.CallTimeout = config.Duration(n.timeout)
	return s
}

// start runs op's service (an epsclient.Server with test methods) and node.
func (n *testNet) start(t testing.TB, op string) {
	t.Helper()
	srv := n.newService(t, op, "127.0.0.1:0")
	n.services[op] = srv
	s := n.settings(op)
	s.Service.Endpoint = "https://" + srv.Addr() + "/jsonrpc"
	n.startNode(t, op, s)
}

// newService starts a service of op on addr: an epsclient.Server with the test methods.
func (n *testNet) newService(t testing.TB, op, addr string) *epsclient.Server {
	t.Helper()
	srv := epsclient.NewServer(op, quietLog())
	srv.Handle("echo", echo)
	srv.Handle("slow", func(ctx context.Context, c *epsclient.Call) (any, error) {
		select {
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
		}
		return "late", nil
	})
	if err := srv.Start(addr, "/jsonrpc", n.pki.Identity(t, op)); err != nil {
		t.Fatal(err)
	}
	return srv
}

// startNode starts op's node with settings s and a client of its local API.
func (n *testNet) startNode(t testing.TB, op string, s eps.Settings) {
	t.Helper()
	id := n.pki.Identity(t, op)
	node, err := eps.New(s, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if n.prepare != nil {
		n.prepare(op, node)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	n.nodes[op] = node
	var cs epsclient.Settings
	cs.Node = "https://" + node.LocalAddr() + "/jsonrpc"
	cs.Listen = "127.0.0.1:0"
	if err := cs.Validate(); err != nil {
		t.Fatal(err)
	}
	cs.Timeout = config.Duration(n.timeout + time.Second)
	n.clients[op] = epsclient.NewClient(cs, id, op)
	t.Cleanup(func() { n.stop(op) })
}

func (n *testNet) stop(op string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if node := n.nodes[op]; node != nil {
		_ = node.Shutdown(ctx)
		delete(n.nodes, op)
	}
	if srv := n.services[op]; srv != nil {
		_ = srv.Shutdown(ctx)
		delete(n.services, op)
	}
	if c := n.clients[op]; c != nil {
		c.Close()
		delete(n.clients, op)
	}
}

type echoResult struct {
	Caller  string          `json:"caller"`
	Groups  []string        `json:"groups"`
	Allowed []string        `json:"allowed"`
	Params  json.RawMessage `json:"params"`
}

// echo answers with what the service learnt about the call: who called (from _client, set by
// the node), the caller's groups and settings, and the params without _client.
func echo(ctx context.Context, c *epsclient.Call) (any, error) {
	var grant struct {
		AllowedDomains []string `json:"allowed_domains"`
	}
	if _, err := c.Caller.Entry.SettingsFor("demo", beta, &grant); err != nil {
		return nil, err
	}
	return echoResult{Caller: c.Caller.Name, Groups: c.Caller.Entry.Groups, Allowed: grant.AllowedDomains, Params: c.Params}, nil
}

func writeFile(t testing.TB, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newNetB(b *testing.B) *testNet { return newNet(b, alpha, beta) }

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

func fingerprint(t testing.TB, p *testnet.PKI, name string) string {
	t.Helper()
	return directory.Fingerprint(p.Identity(t, name).Cert.Leaf)
}

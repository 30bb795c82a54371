package private

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
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

// node is a stand-in for the private proxy's EPS node over real mutual TLS: it records each
// announceConnections call it gets and accepts every name.
type node struct {
	mu     sync.Mutex
	bodies []int            // request body sizes
	names  map[string]int   // name -> times announced
	calls  map[string][]int // method -> names per call
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
	n.mu.Lock()
	n.bodies = append(n.bodies, len(body))
	n.calls[req.Method] = append(n.calls[req.Method], len(req.Params.Connections))
	for _, a := range req.Params.Connections {
		n.names[a.Domain]++
	}
	n.mu.Unlock()
	res, _ := json.Marshal(make([]*jsonrpc.Error, len(req.Params.Connections)))
	_ = json.NewEncoder(w).Encode(jsonrpc.Response{JSONRPC: jsonrpc.Version, Result: res, ID: req.ID})
}

// Announcements go out in calls the public proxy accepts: at most wire.MaxAnnounceBatch names and
// well under the JSON-RPC body cap each, every name exactly once.
func TestAnnouncerSplitsLargeSetsIntoAcceptableCalls(t *testing.T) {
	for _, tc := range []struct {
		name  string
		count int
		label int // length of the first label: long names hit the byte limit first
	}{{"many short names", 2*wire.MaxAnnounceBatch + 1, 8}, {"long names", 6000, 60}} {
		t.Run(tc.name, func(t *testing.T) {
			pk := testnet.NewPKI(t, self)
			id := pk.Identity(t, self)
			nd := &node{names: map[string]int{}, calls: map[string][]int{}}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := jsonrpc.NewHTTPServer(nd, id.ServerConfig(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
			go func() { _ = srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
			t.Cleanup(func() { srv.Close() })

			base := proxy.Base{Name: self, Identity: id, DataDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			base.EPS = epsclient.Settings{Node: "https://" + ln.Addr().String() + "/jsonrpc", Listen: "127.0.0.1:0"}.WithDefaults()
			p, err := New(base, Settings{InternalEndpoint: "127.0.0.1:8888"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.relay.Close(); p.client.Close() })
			label := strings.Repeat("a", tc.label-6)
			long := strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 50)
			_ = p.anns.update(func(m map[key]Announcement) {
				for i := range tc.count {
					d := fmt.Sprintf("%s%06d.%s.example", label, i, long)
					m[key{d, "pub.test"}] = Announcement{Domain: d, Proxy: "pub.test"}
				}
			})
			if !p.announceAll() {
				t.Fatal("announceAll failed")
			}
			nd.mu.Lock()
			defer nd.mu.Unlock()
			if len(nd.names) != tc.count {
				t.Errorf("%d distinct names arrived, want %d", len(nd.names), tc.count)
			}
			for name, times := range nd.names {
				if times != 1 {
					t.Fatalf("%s announced %d times", name, times)
				}
			}
			for i, n := range nd.calls["pub.test."+wire.AnnounceConnections] {
				if n > wire.MaxAnnounceBatch || nd.bodies[i] >= jsonrpc.MaxBody {
					t.Errorf("call %d: %d names, %d bytes", i, n, nd.bodies[i])
				}
			}
			if len(nd.calls) != 1 || len(nd.bodies) < 2 {
				t.Errorf("calls: %v", nd.calls)
			}
		})
	}
}

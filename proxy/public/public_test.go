package public

import (
	"context"
	"encoding/json"
	"epsproxy/eps/directory"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// If the engine stops while the proxy serves (its accept failed for good), the proxy says so on
// Failed, and the process exits (daemon.Run) rather than run on with a dead public port. A
// proxy that is stopped on purpose reports nothing.
func TestADeadEngineIsAFailure(t *testing.T) {
	p := newProxy(t)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", p.s.TLSBind); err != nil {
		t.Fatalf("the public port does not listen: %v", err)
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.Failed():
		if !strings.Contains(err.Error(), "tls_bind") {
			t.Errorf("failure %q does not name the listeners' settings", err)
		}
	case <-ctx.Done():
		t.Fatal("the engine stopped and the proxy did not report it")
	}
	_ = p.Stop(ctx)

	q := newProxy(t)
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	if err := q.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-q.Failed():
		t.Errorf("a proxy stopped on purpose reported %v", err)
	case <-time.After(200 * time.Millisecond):
	}
}

// A grant removed from the directory takes effect at the public proxy: the announcer's names it
// no longer covers stop matching (and leave the file), whatever the announcer does.
func TestRemovedGrantsStopMatching(t *testing.T) {
	var mu sync.Mutex
	grants := map[string][]string{"a.test": {".a.example"}}
	p := newProxyWithNode(t, func(method string, params json.RawMessage, _ []byte) (any, *jsonrpc.Error) {
		if method != self+"."+directory.LookupMethod {
			return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "%s", method)
		}
		var ps directory.LookupParams
		_ = json.Unmarshal(params, &ps)
		mu.Lock()
		defer mu.Unlock()
		res := directory.LookupResult{}
		for _, op := range ps.Operators {
			if g, ok := grants[op]; ok {
				res[op] = &directory.Entry{Name: op, Settings: []directory.Setting{{Service: wire.Service, Operator: self, Settings: map[string]any{"allowed_domains": g}}}}
			}
		}
		return res, nil
	})
	ctx := context.Background()
	for _, c := range []struct{ op, grant, names string }{
		{"a.test", ".a.example", `{"domain": "www.a.example"}, {"domain": "api.b.a.example"}`},
		{"b.test", ".b.example", `{"domain": "www.b.example"}`},
	} {
		if _, err := epsclient.Typed(p.announceConnections)(ctx, call(wire.AnnounceConnections, c.op, []string{c.grant}, `{"connections": [`+c.names+`]}`)); err != nil {
			t.Fatal(err)
		}
	}
	// The directory now grants a.test only .b.a.example, and b.test is gone.
	mu.Lock()
	grants["a.test"] = []string{".b.a.example"}
	mu.Unlock()
	p.checkGrants(context.Background())
	now := time.Now()
	for name, want := range map[string]bool{"www.a.example": false, "api.b.a.example": true, "www.b.example": false} {
		if _, ok := p.table.Lookup([]byte(name), now); ok != want {
			t.Errorf("%s matches: %v, want %v", name, ok, want)
		}
	}
	b, _ := os.ReadFile(filepath.Join(p.base.DataDir, StoreFile))
	if strings.Contains(string(b), "www.a.example") || strings.Contains(string(b), "www.b.example") {
		t.Errorf("withdrawn names are still in the file: %s", b)
	}
}

// newProxyWithNode builds a public proxy (not started) whose EPS client talks to a node
// stand-in that answers every call with answer.
func newProxyWithNode(t *testing.T, answer testnet.Answer) *Proxy {
	t.Helper()
	id := testnet.NewPKI(t, self).Identity(t, self)
	base := proxy.Base{Name: self, Identity: id, DataDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	base.EPS = epsclient.Settings{Node: testnet.NodeStandIn(t, id, answer), Listen: "127.0.0.1:0"}.WithDefaults()
	p, err := New(base, Settings{TLSBind: testnet.FreeAddr(t), InternalBind: testnet.FreeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.relay.Close(); p.pool.Close(); p.client.Close() })
	return p
}

package eps_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"epsproxy/eps"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
)

func rpcCode(t *testing.T, err error) int {
	t.Helper()
	var e *jsonrpc.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a JSON-RPC error, got %T %v", err, err)
	}
	return e.Code
}

func TestRoutedCallCarriesClientSetByReceivingNode(t *testing.T) {
	n := newNet(t, alpha, beta)
	var got echoResult
	params := map[string]any{"x": 1, "_client": map[string]any{"name": "forged.test", "entry": map[string]any{"groups": []string{"admins"}}}}
	if err := n.clients[alpha].Call(context.Background(), beta, "echo", params, &got); err != nil {
		t.Fatal(err)
	}
	if got.Caller != alpha {
		t.Errorf("_client.name = %q, want %q (set by beta's node, not the caller)", got.Caller, alpha)
	}
	if strings.Join(got.Groups, ",") != "callers" {
		t.Errorf("_client.entry.groups = %v, want [callers]", got.Groups)
	}
	if strings.Join(got.Allowed, ",") != ".alpha.example" {
		t.Errorf("settings granted to alpha for beta's demo service = %v", got.Allowed)
	}
	if string(got.Params) != `{"x":1}` {
		t.Errorf("params reaching the service = %s, want {\"x\":1} without _client", got.Params)
	}
}

func TestCallerOutsideAllowedGroupsGets403(t *testing.T) {
	n := newNet(t, beta, gamma)
	err := n.clients[gamma].Call(context.Background(), beta, "echo", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeNotAllowed {
		t.Fatalf("gamma calling beta.echo: code %d (%v), want 403", code, err)
	}
	n2 := newNet(t, alpha, beta)
	err = n2.clients[alpha].Call(context.Background(), beta, "secret", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeNotAllowed {
		t.Fatalf("alpha calling beta.secret (admins only): code %d, want 403", code)
	}
	err = n2.clients[alpha].Call(context.Background(), beta, "nosuch", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeMethodNotFound {
		t.Fatalf("alpha calling an unoffered method: code %d, want %d", code, jsonrpc.CodeMethodNotFound)
	}
}

func TestUnknownOperatorAndStoppedPeer(t *testing.T) {
	n := newNet(t, alpha, beta)
	err := n.clients[alpha].Call(context.Background(), "nobody.test", "echo", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeNotFound || !strings.Contains(err.Error(), "nobody.test") {
		t.Fatalf("unknown operator: %v", err)
	}
	n.stop(beta)
	start := time.Now()
	err = n.clients[alpha].Call(context.Background(), beta, "echo", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeUnreachable || !strings.Contains(err.Error(), beta) {
		t.Fatalf("stopped peer: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopped peer took %v to report, beyond the 2 s call timeout", d)
	}
}

func TestSlowServiceTimesOut(t *testing.T) {
	n := newNet(t, alpha, beta)
	err := n.clients[alpha].Call(context.Background(), beta, "slow", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeTimeout {
		t.Fatalf("slow service: %v, want code %d", err, jsonrpc.CodeTimeout)
	}
}

// A node that answers at beta's address with a certificate for another name is refused by
// the caller's node: the peer's identity is the name in its verified certificate.
func TestPeerWithCertificateForAnotherNameIsRefused(t *testing.T) {
	n := newNet(t, alpha)
	// gamma's node listens where the directory says beta's node is.
	n.peers[gamma] = n.peers[beta]
	n.writeDirectory(t, "")
	n.start(t, gamma)
	n.peers[gamma] = "" // not used further
	// alpha's node loaded the directory before the swap, so it still dials beta's address.
	err := n.clients[alpha].Call(context.Background(), beta, "echo", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeUnreachable || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("impostor at beta's address: %v", err)
	}
}

// The caller's node refuses a node at beta's address whose certificate comes from another CA.
func TestCallerRefusesPeerFromAnotherCA(t *testing.T) {
	n := newNet(t, alpha)
	stranger := newNet(t)
	stranger.peers = n.peers
	stranger.writeDirectory(t, "")
	stranger.start(t, beta)
	err := n.clients[alpha].Call(context.Background(), beta, "echo", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeUnreachable || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("stranger CA at beta's address: %v", err)
	}
}

// The receiving node refuses a caller whose certificate comes from another CA.
func TestNodeRefusesCallerFromAnotherCA(t *testing.T) {
	n := newNet(t, beta)
	stranger := newNet(t)
	stranger.peers = n.peers
	stranger.writeDirectory(t, "")
	stranger.start(t, alpha)
	err := stranger.clients[alpha].Call(context.Background(), beta, "echo", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeUnreachable || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("caller from a stranger CA: %v", err)
	}
}

// A certificate from the network's CA for a name the directory does not know is refused at the
// peer link, and the local API serves only its own operator's certificate.
func TestCertificateNamesAreChecked(t *testing.T) {
	n := newNet(t, beta)
	n.pki.Add(t, "stranger", "stranger.test")
	call := func(url, certFile string) error {
		id := n.pki.Identity(t, certFile)
		c := &jsonrpc.Client{URL: url, HTTP: &http.Client{Transport: jsonrpc.NewTransport(id.ClientConfig(beta), nil)}}
		defer c.HTTP.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.Call(ctx, "echo", map[string]any{}, nil)
	}
	err := call("https://"+n.peers[beta]+"/eps/v1/call", "stranger")
	if code := rpcCode(t, err); code != jsonrpc.CodeNotAllowed || !strings.Contains(err.Error(), "names no operator") {
		t.Errorf("stranger at the peer link: %v", err)
	}
	local := "https://" + n.nodes[beta].LocalAddr() + "/jsonrpc"
	err = call(local, alpha)
	if code := rpcCode(t, err); code != jsonrpc.CodeNotAllowed || !strings.Contains(err.Error(), "only its own operator") {
		t.Errorf("alpha's certificate at beta's local API: %v", err)
	}
	// The service endpoint takes calls only from its own node.
	err = call("https://"+n.services[beta].Addr()+"/jsonrpc", alpha)
	if code := rpcCode(t, err); code != jsonrpc.CodeNotAllowed {
		t.Errorf("alpha calling beta's service directly: %v", err)
	}
}

func TestPinnedCertificates(t *testing.T) {
	n := newNet(t)
	n.start(t, beta)
	// A wrong pin for alpha: alpha's node refuses to start with a certificate the directory
	// does not pin for it.
	writeFile(t, n.dir, "002_pins.yml", fmt.Sprintf("operators:\n  alpha.test:\n    certificates: [%s]\n", strings.Repeat("ab", 32)))
	if _, err := eps.New(n.settings(alpha), quietLog()); err == nil || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("alpha's node started with an unpinned certificate: %v", err)
	}
	// The right pin for alpha and a wrong one for beta (whose node already runs): alpha's node
	// refuses to talk to beta.
	writeFile(t, n.dir, "002_pins.yml", fmt.Sprintf("operators:\n  alpha.test:\n    certificates: [%s]\n  beta.test:\n    certificates: [%s]\n",
		fingerprint(t, n.pki, alpha), strings.Repeat("cd", 32)))
	n.start(t, alpha)
	err := n.clients[alpha].Call(context.Background(), beta, "echo", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeUnreachable || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("beta with an unpinned certificate: %v", err)
	}
}

func TestThousandConcurrentCallsAllAnswered(t *testing.T) {
	// A throughput test, not a latency one: a generous call timeout on a shared 2-core machine.
	n := newNet(t)
	n.timeout = 30 * time.Second
	n.start(t, alpha)
	n.start(t, beta)
	const calls = 1000
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got echoResult
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			if err := n.clients[alpha].Call(ctx, beta, "echo", map[string]int{"i": i}, &got); err != nil {
				errs <- err
				return
			}
			if want := fmt.Sprintf(`{"i":%d}`, i); string(got.Params) != want || got.Caller != alpha {
				errs <- fmt.Errorf("call %d answered %s by %s", i, got.Params, got.Caller)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed < 5 {
			t.Error(err)
		}
		failed++
	}
	if failed > 0 {
		t.Fatalf("%d of %d calls failed", failed, calls)
	}
}

func TestPingAcrossNodes(t *testing.T) {
	n := newNet(t, alpha, beta)
	var p eps.Ping
	if err := n.clients[alpha].Call(context.Background(), beta, "_ping", nil, &p); err != nil {
		t.Fatal(err)
	}
	if p.Name != beta {
		t.Errorf("ping answered by %q, want %q", p.Name, beta)
	}
	if err := n.clients[alpha].Call(context.Background(), alpha, "_ping", nil, &p); err != nil || p.Name != alpha {
		t.Errorf("own ping: %v %q", err, p.Name)
	}
}

var _ = epsclient.ErrQueueFull

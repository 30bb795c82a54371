package eps_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"epsproxy/eps"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
)

// gate holds the calls a service takes for beta.slow until it opens: each call says so on
// entered, then waits. The test's end opens it, so nothing stays held.
type gate struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// holdSlow makes srv's slow method wait at a new gate and answer `answer` once it opens. Calls
// already held at an earlier gate stay held there.
func holdSlow(t *testing.T, srv *epsclient.Server, answer string) *gate {
	t.Helper()
	g := &gate{entered: make(chan struct{}, 64), release: make(chan struct{})}
	srv.Handle("slow", func(ctx context.Context, c *epsclient.Call) (any, error) {
		g.entered <- struct{}{}
		select {
		case <-g.release:
			return answer, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// wait returns once k more calls are held at g. The bound only keeps a broken test from hanging.
func (g *gate) wait(t *testing.T, k int) {
	t.Helper()
	for i := range k {
		select {
		case <-g.entered:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of %d calls reached the service", i, k)
		}
	}
}

type heldCall struct {
	answer string
	err    error
}

// callSlow calls beta.slow from alpha in the background; its outcome comes on the channel.
func callSlow(n *testNet) <-chan heldCall {
	c := n.clients[alpha]
	out := make(chan heldCall, 1)
	go func() {
		var h heldCall
		h.err = c.Call(context.Background(), beta, "slow", map[string]any{}, &h.answer)
		out <- h
	}()
	return out
}

// answered waits for held calls to end and fails unless each was answered `want`.
func answered(t *testing.T, want string, calls ...<-chan heldCall) {
	t.Helper()
	for i, c := range calls {
		if h := <-c; h.err != nil || h.answer != want {
			t.Errorf("held call %d: %q, %v; want %q", i+1, h.answer, h.err, want)
		}
	}
}

// reload applies s to beta's node and fails unless it applied all of it.
func reload(t *testing.T, n *testNet, s eps.Settings) {
	t.Helper()
	restart, err := n.nodes[beta].Reload(s)
	if err != nil || len(restart) > 0 {
		t.Fatalf("reload: %v, restart %v; want no error and nothing left for a restart", err, restart)
	}
}

// overloaded fails unless a call alpha -> beta.echo is refused at once as overloaded, naming the
// max_inflight in force.
func overloaded(t *testing.T, n *testNet, limit int) {
	t.Helper()
	err := n.clients[alpha].Call(context.Background(), beta, "echo", map[string]any{}, nil)
	if err == nil {
		t.Fatalf("with max_inflight %d reached, a further call was delivered", limit)
	}
	if code := rpcCode(t, err); code != jsonrpc.CodeOverloaded || !strings.Contains(err.Error(), fmt.Sprintf("max_inflight %d", limit)) {
		t.Fatalf("with max_inflight %d reached: %v, want code %d naming the cap", limit, err, jsonrpc.CodeOverloaded)
	}
}

// max_inflight lowered by a reload: the calls in flight go on, no new one starts until fewer than
// the new cap are in flight; raised, more run at once.
func TestReloadChangesMaxInflight(t *testing.T) {
	n := newNet(t)
	n.timeout = 30 * time.Second // calls are held by the test, not timed
	n.start(t, alpha)
	r := newReplica(t, n)
	s := replicaSettings(n, time.Hour, r)
	n.startNode(t, beta, s)

	g := holdSlow(t, r.srv, "first")
	first := []<-chan heldCall{callSlow(n), callSlow(n), callSlow(n)}
	g.wait(t, 3)
	s.MaxInflight = 2
	reload(t, n, s)
	overloaded(t, n, 2)
	g.open()
	answered(t, "first", first...) // in flight across the reload, answered

	g = holdSlow(t, r.srv, "second")
	second := []<-chan heldCall{callSlow(n)}
	g.wait(t, 1)
	callBeta(t, n, 1) // one in flight, below the cap of 2
	second = append(second, callSlow(n))
	g.wait(t, 1)
	overloaded(t, n, 2)

	s.MaxInflight = 5
	reload(t, n, s)
	second = append(second, callSlow(n), callSlow(n), callSlow(n))
	g.wait(t, 3) // five held at the service at once
	overloaded(t, n, 5)
	g.open()
	answered(t, "second", second...)
	callBeta(t, n, 1)
}

// The service endpoints replaced by a reload: calls go to the new list at once, a call held at an
// endpoint taken out of it still gets that endpoint's answer, an endpoint that stays keeps its
// counters, and a new health_every applies.
func TestReloadReplacesServiceEndpoints(t *testing.T) {
	n := newNet(t)
	n.timeout = 30 * time.Second // a call is held by the test, not timed
	n.start(t, alpha)
	a, b := newReplica(t, n), newReplica(t, n)
	n.startNode(t, beta, replicaSettings(n, time.Hour, a))
	callBeta(t, n, 4)
	if a.calls.Load() != 4 || b.calls.Load() != 0 {
		t.Fatalf("delivering to A: A answered %d, B %d of 4 calls", a.calls.Load(), b.calls.Load())
	}

	g := holdSlow(t, a.srv, "answered by A")
	atA := callSlow(n)
	g.wait(t, 1)
	reload(t, n, replicaSettings(n, time.Hour, b))
	callBeta(t, n, 4)
	if a.calls.Load() != 4 || b.calls.Load() != 4 {
		t.Errorf("reloaded to [B]: A answered %d more calls, B %d of 4", a.calls.Load()-4, b.calls.Load())
	}
	if st := n.nodes[beta].Stats().Service; len(st) != 1 || st[0].URL != b.url() || !st[0].Up || st[0].Delivered != 4 {
		t.Errorf("stats after the reload to [B]: %+v", st)
	}
	g.open()
	answered(t, "answered by A", atA)

	reload(t, n, replicaSettings(n, time.Hour, a, b))
	beforeA, beforeB := a.calls.Load(), b.calls.Load()
	callBeta(t, n, 10)
	if a.calls.Load() == beforeA || b.calls.Load() == beforeB {
		t.Errorf("reloaded to [A, B]: A answered %d, B %d of 10 calls; want both some", a.calls.Load()-beforeA, b.calls.Load()-beforeB)
	}
	// B stayed in the list: its counts go on from before the reload.
	if st := endpointStats(t, n, b.url()); !st.Up || st.Delivered != b.calls.Load() {
		t.Errorf("B after two reloads: %+v, B answered %d calls", st, b.calls.Load())
	}

	// health_every from an hour to 200 ms: with an hour, the prober a reload starts probes B once
	// and then not again; with 200 ms, it finds B back up and then down again, no call made.
	b.stop(t)
	callBeta(t, n, 2) // the one sent to B finds it gone and marks it down
	if st := endpointStats(t, n, b.url()); st.Up {
		t.Fatalf("B stopped, after a call reached for it: %+v", st)
	}
	b.start(t, n)
	reload(t, n, replicaSettings(n, 200*time.Millisecond, a, b))
	waitFor(t, "B, back on its port, is still down in the stats", func() bool { return endpointStats(t, n, b.url()).Up })
	b.stop(t)
	waitFor(t, "B, stopped, is still up in the stats", func() bool { return !endpointStats(t, n, b.url()).Up })
	before := a.calls.Load()
	callBeta(t, n, 4)
	if got := a.calls.Load() - before; got != 4 {
		t.Errorf("with B down, A answered %d of 4 calls", got)
	}
}

// A node with no service endpoint gets one by a reload, and loses it again.
func TestReloadAddsAndRemovesTheService(t *testing.T) {
	n := newNet(t)
	n.start(t, alpha)
	r := newReplica(t, n)
	none := replicaSettings(n, 0)
	n.startNode(t, beta, none)
	noService := func(when string) {
		t.Helper()
		err := n.clients[alpha].Call(context.Background(), beta, "echo", map[string]any{}, nil)
		if code := rpcCode(t, err); code != jsonrpc.CodeUnreachable || !strings.Contains(err.Error(), "no service endpoint") {
			t.Fatalf("%s: %v, want code %d for no service endpoint", when, err, jsonrpc.CodeUnreachable)
		}
		if st := n.nodes[beta].Stats().Service; len(st) != 0 {
			t.Errorf("%s: stats %+v, want no endpoint", when, st)
		}
	}
	noService("started with none")
	reload(t, n, replicaSettings(n, 0, r))
	callBeta(t, n, 3)
	if got := r.calls.Load(); got != 3 {
		t.Errorf("the service added by a reload answered %d of 3 calls", got)
	}
	reload(t, n, none)
	noService("reloaded to none")
}

// Reload names the keys it cannot apply, measured against the running values, and only those;
// settings it refuses change nothing.
func TestReloadNamesOnlyTheKeysARestartApplies(t *testing.T) {
	n := newNet(t)
	n.start(t, alpha)
	a, b := newReplica(t, n), newReplica(t, n)
	n.startNode(t, beta, replicaSettings(n, time.Hour, a))

	s := replicaSettings(n, 500*time.Millisecond, b)
	s.MaxInflight = 7
	s.CallTimeout *= 2
	reload(t, n, s)

	s.TLS = n.pki.TLS(alpha)
	s.Peer.Bind = testnet.FreeAddr(t)
	s.Local.Bind = testnet.FreeAddr(t)
	s.Local.Path = "/elsewhere"
	s.Admin.Bind = "127.0.0.1:6070"
	want := []string{"admin", "local.bind", "local.path", "peer.bind", "tls"}
	for range 2 { // named again: the running values are still the old ones
		restart, err := n.nodes[beta].Reload(s)
		if err != nil || !slices.Equal(restart, want) {
			t.Fatalf("reload: %v, restart %v; want %v", err, restart, want)
		}
	}
	// The running peer link and local API serve on; calls go to B.
	callBeta(t, n, 2)
	if err := n.clients[beta].Call(context.Background(), beta, "_ping", nil, nil); err != nil {
		t.Errorf("the local API at its running address and path: %v", err)
	}

	bad := s
	bad.Service.Endpoints = []string{"http://" + a.addr + "/jsonrpc"}
	if _, err := n.nodes[beta].Reload(bad); err == nil || !strings.Contains(err.Error(), "service.endpoints[0]") {
		t.Errorf("a plain-http endpoint: %v, want refused naming the key", err)
	}
	bad = s
	bad.MaxInflight = -1
	if _, err := n.nodes[beta].Reload(bad); err == nil || !strings.Contains(err.Error(), "max_inflight") {
		t.Errorf("max_inflight -1: %v, want refused naming the key", err)
	}
	bad = s
	bad.Name = alpha
	if _, err := n.nodes[beta].Reload(bad); err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("another name: %v, want refused", err)
	}
	before := b.calls.Load()
	callBeta(t, n, 2)
	if a.calls.Load() != 0 || b.calls.Load() != before+2 {
		t.Errorf("after refused reloads: A answered %d, B %d of 2 calls; want B both", a.calls.Load(), b.calls.Load()-before)
	}
}

package eps_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"epsproxy/eps"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
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

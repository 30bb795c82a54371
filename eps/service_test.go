package eps_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/eps"
	"epsproxy/epsclient"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
)

// replica is one of several processes serving beta: a service on a fixed free port (so it can
// come back on it) that counts the echo calls it answers.
type replica struct {
	srv   *epsclient.Server
	addr  string
	calls atomic.Int64
}

func (r *replica) url() string { return "https://" + r.addr + "/jsonrpc" }

// startReplicas starts k services of beta and beta's node delivering to all of them, probing
// them every `every`.
func startReplicas(t *testing.T, n *testNet, k int, every time.Duration) []*replica {
	t.Helper()
	reps := make([]*replica, k)
	for i := range reps {
		reps[i] = newReplica(t, n)
	}
	n.startNode(t, beta, replicaSettings(n, every, reps...))
	return reps
}

// newReplica starts one service of beta on a free port; the test's end stops it.
func newReplica(t *testing.T, n *testNet) *replica {
	t.Helper()
	r := &replica{addr: testnet.FreeAddr(t)}
	r.start(t, n)
	t.Cleanup(func() { r.stop(t) })
	return r
}

// replicaSettings are beta's node settings delivering to reps (none: no service endpoint),
// probing them every `every`.
func replicaSettings(n *testNet, every time.Duration, reps ...*replica) eps.Settings {
	s := n.settings(beta)
	s.Service.HealthEvery = config.Duration(every)
	for _, r := range reps {
		s.Service.Endpoints = append(s.Service.Endpoints, r.url())
	}
	return s
}

func (r *replica) start(t *testing.T, n *testNet) {
	t.Helper()
	r.srv = n.newService(t, beta, r.addr)
	r.srv.Handle("echo", func(ctx context.Context, c *epsclient.Call) (any, error) {
		r.calls.Add(1)
		return echo(ctx, c)
	})
}

func (r *replica) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Errorf("stopping the service at %s: %v", r.addr, err)
	}
}

// callBeta makes `calls` calls alpha -> beta.echo, one after the other; each must succeed.
func callBeta(t *testing.T, n *testNet, calls int) {
	t.Helper()
	for i := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.clients[alpha].Call(ctx, beta, "echo", map[string]int{"i": i}, nil)
		cancel()
		if err != nil {
			t.Fatalf("call %d of %d: %v", i+1, calls, err)
		}
	}
}

// endpointStats is beta's node's view of the endpoint at url.
func endpointStats(t *testing.T, n *testNet, url string) eps.EndpointStats {
	t.Helper()
	for _, e := range n.nodes[beta].Stats().Service {
		if e.URL == url {
			return e
		}
	}
	t.Fatalf("no endpoint %s in the stats: %+v", url, n.nodes[beta].Stats())
	return eps.EndpointStats{}
}

// waitFor polls cond every 20 ms until it holds or 10 s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two processes serve beta: its node spreads calls over both; when one stops, every call still
// succeeds through the other and the stats show it down; when it comes back on its port, the
// prober finds it and it gets calls again.
func TestCallsSpreadOverLiveServiceEndpoints(t *testing.T) {
	n := newNet(t, alpha)
	reps := startReplicas(t, n, 2, 200*time.Millisecond)

	callBeta(t, n, 40)
	for i, r := range reps {
		if got := r.calls.Load(); got < 10 {
			t.Errorf("service %d answered %d of 40 calls, want at least 10", i, got)
		}
	}
	for _, r := range reps {
		if st := endpointStats(t, n, r.url()); !st.Up || st.Delivered != r.calls.Load() || st.Failed != 0 {
			t.Errorf("both up: %+v, the service counted %d calls", st, r.calls.Load())
		}
	}

	reps[1].stop(t)
	before := reps[0].calls.Load()
	callBeta(t, n, 40)
	if got := reps[0].calls.Load() - before; got != 40 {
		t.Errorf("with one service stopped, the other answered %d of 40 calls", got)
	}
	waitFor(t, "the stopped service is still up in the stats", func() bool { return !endpointStats(t, n, reps[1].url()).Up })
	if st := endpointStats(t, n, reps[1].url()); st.Delivered != reps[1].calls.Load() {
		t.Errorf("stopped service: %+v, it counted %d calls", st, reps[1].calls.Load())
	}

	stopped := reps[1].calls.Load()
	reps[1].start(t, n)
	waitFor(t, "the restarted service got no call", func() bool {
		callBeta(t, n, 1)
		return reps[1].calls.Load() > stopped
	})
	if st := endpointStats(t, n, reps[1].url()); !st.Up {
		t.Errorf("restarted service answers calls but is down in the stats: %+v", st)
	}
	// A node with one endpoint runs no prober and counts the same way.
	if st := n.nodes[alpha].Stats().Service; len(st) != 1 || !st[0].Up {
		t.Errorf("alpha's single endpoint: %+v", st)
	}
}

// Between probes, a call that cannot reach its endpoint marks it down and goes on to the other
// one at once, so no call fails while one service is up; and since the health state can be
// stale, a call with every endpoint down still tries each once, so a service that came back
// answers before any probe has seen it.
func TestDeliveryFailsOverWithoutWaitingForTheProber(t *testing.T) {
	n := newNet(t, alpha)
	reps := startReplicas(t, n, 2, time.Hour) // one probe each at start, then none during the test
	callBeta(t, n, 2)
	if reps[0].calls.Load() != 1 || reps[1].calls.Load() != 1 {
		t.Fatalf("two calls answered %d and %d, want one each", reps[0].calls.Load(), reps[1].calls.Load())
	}

	reps[1].stop(t)
	callBeta(t, n, 40)
	if got := reps[0].calls.Load(); got != 41 {
		t.Errorf("with one service stopped, the other answered %d calls, want 41", got)
	}
	// The first call to reach for the stopped service found it gone and marked it down; the
	// later ones went straight to the live one.
	if st := endpointStats(t, n, reps[1].url()); st.Up || st.Failed != 1 || st.Delivered != 1 {
		t.Errorf("stopped service: %+v, want down with 1 delivered and 1 failed", st)
	}

	reps[0].stop(t)
	err := n.clients[alpha].Call(context.Background(), beta, "echo", map[string]any{}, nil)
	if code := rpcCode(t, err); code != jsonrpc.CodeUnreachable || !strings.Contains(err.Error(), "none of its 2 endpoints") || !strings.Contains(err.Error(), beta) {
		t.Fatalf("every service stopped: %v", err)
	}
	for i, r := range reps {
		if st := endpointStats(t, n, r.url()); st.Up || st.Failed == 0 {
			t.Errorf("service %d after a call that found neither: %+v", i, st)
		}
	}

	reps[0].start(t, n)
	callBeta(t, n, 1)
	if got := reps[0].calls.Load(); got != 42 {
		t.Errorf("the service back on its port has answered %d calls, want 42", got)
	}
	if st := endpointStats(t, n, reps[0].url()); !st.Up {
		t.Errorf("the service that answered is still down: %+v", st)
	}
}

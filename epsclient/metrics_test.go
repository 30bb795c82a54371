package epsclient_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/metrics"
	"epsproxy/internal/testnet"
)

// An instrumented client times each call under its method (without the operator) and result.
func TestClientTimesItsCalls(t *testing.T) {
	p := testnet.NewPKI(t, op)
	srv := startServer(t, p, map[string]epsclient.Handler{
		op + ".echo": func(context.Context, *epsclient.Call) (any, error) { return "ok", nil },
		op + ".fail": func(context.Context, *epsclient.Call) (any, error) {
			return nil, jsonrpc.Errorf(jsonrpc.CodeNotFound, "nothing here")
		},
	})
	c := epsclient.NewClient(epsclient.Settings{Node: "https://" + srv.Addr() + "/jsonrpc"}, p.Identity(t, op), op)
	defer c.Close()
	calls := metrics.NewCalls("eps_client_call_duration_seconds", "test", nil)
	c.Instrument(calls)
	ctx := context.Background()
	// The node adds _client; here the test stands in for it.
	params := map[string]any{"_client": map[string]any{"name": "x"}}
	if err := c.Call(ctx, op, "echo", params, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CallRaw(ctx, op, "echo", params); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, op, "fail", params, nil); code(err) != jsonrpc.CodeNotFound {
		t.Fatalf("fail: %v", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(calls)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 1 || len(fams[0].GetMetric()) != 2 {
		t.Fatalf("gathered %v, want one family of two series (echo ok, fail not_found)", fams)
	}
	got := map[string]uint64{}
	for _, m := range fams[0].GetMetric() {
		l := m.GetLabel()
		got[l[0].GetValue()+" "+l[1].GetValue()] = m.GetHistogram().GetSampleCount()
	}
	if got["echo ok"] != 2 || got["fail not_found"] != 1 {
		t.Errorf("calls by method and result: %v, want echo ok 2, fail not_found 1", got)
	}
}

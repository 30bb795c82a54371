package eps_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/eps"
	"epsproxy/internal/metrics"
)

// The node times what it delivers to its service by method and result, with a method the
// directory does not list for it under one label, and shows its service endpoint's state.
func TestNodeMetrics(t *testing.T) {
	n := newNet(t)
	reg := prometheus.NewRegistry()
	n.prepare = func(op string, node *eps.Node) {
		if op == beta {
			if err := node.Metrics(reg); err != nil {
				t.Fatal(err)
			}
		}
	}
	n.start(t, alpha)
	n.start(t, beta)
	ctx := context.Background()
	for range 2 {
		if err := n.clients[alpha].Call(ctx, beta, "echo", map[string]any{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Refused by the directory: never delivered, so not timed.
	_ = n.clients[alpha].Call(ctx, beta, "secret", map[string]any{}, nil)
	// beta's own service may call beta's methods through its local API, listed or not.
	_ = n.clients[beta].Call(ctx, beta, "made-up", map[string]any{}, nil)

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := metrics.Flatten(fams)
	url := "https://" + n.services[beta].Addr() + "/jsonrpc"
	want := map[string]float64{
		`epsproxy_eps_delivery_duration_seconds{method="echo",result="ok"}`:                               2,
		`epsproxy_eps_delivery_duration_seconds{method="` + metrics.OtherMethod + `",result="no_method"}`: 1,
		`epsproxy_eps_service_endpoint_up{endpoint="` + url + `"}`:                                        1,
		`epsproxy_eps_service_endpoint_calls_total{endpoint="` + url + `",outcome="delivered"}`:           3,
		`epsproxy_eps_service_endpoint_calls_total{endpoint="` + url + `",outcome="failed"}`:              0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want exactly %v", got, want)
	}
}

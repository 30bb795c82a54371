package metrics_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"epsproxy/engine/relay"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/metrics"
)

// value finds the series of family name whose labels include want and returns its value (a
// counter's, a gauge's, or a histogram's sample count); ok is false when there is none.
func value(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			return sampleValue(m), true
		}
	}
	return 0, false
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func mustValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := value(t, g, name, want)
	if !ok {
		t.Fatalf("no series %s%v", name, want)
	}
	return v
}

var reasons = []string{"no_route", "too_slow"}

// A name gets its own label until MaxDomains have one; later names share Other, with one
// warning. The fixed labels are there from the start, "" is NoName, and a name spelled like a
// fixed label counts under it.
func TestDomainLabelsAreBounded(t *testing.T) {
	var logs bytes.Buffer
	d := metrics.NewDomains(reasons, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if d.Get("") != d.Get(metrics.NoName) || d.Get(metrics.Other) == d.Get(metrics.Unannounced) {
		t.Fatal("the fixed labels are not distinct, or \"\" is not NoName")
	}
	first := d.Get("a.test")
	if d.Get("a.test") != first {
		t.Fatal("a name got two labels")
	}
	for i := 1; i < metrics.MaxDomains; i++ {
		if d.Get(fmt.Sprintf("n%d.test", i)) == d.Get(metrics.Other) {
			t.Fatalf("name %d of %d has no label of its own", i+1, metrics.MaxDomains)
		}
	}
	for i := range 3 {
		if d.Get(fmt.Sprintf("late%d.test", i)) != d.Get(metrics.Other) {
			t.Fatalf("name %d past the cap got a label of its own", i+1)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for the cap, want 1:\n%s", n, logs.String())
	}
	d.Get("late0.test").Accepted()
	d.Get("a.test").Refused(1)
	d.Get("a.test").Refused(99) // not a reason: ignored
	reg := prometheus.NewRegistry()
	reg.MustRegister(d)
	if v := mustValue(t, reg, "epsproxy_connections_accepted_total", map[string]string{"domain": metrics.Other}); v != 1 {
		t.Errorf("accepted under %s = %v, want 1", metrics.Other, v)
	}
	if v := mustValue(t, reg, "epsproxy_connections_refused_total", map[string]string{"domain": "a.test", "reason": "too_slow"}); v != 1 {
		t.Errorf("refused too_slow = %v, want 1", v)
	}
	if _, ok := value(t, reg, "epsproxy_connections_refused_total", map[string]string{"domain": "a.test", "reason": "no_route"}); ok {
		t.Error("a reason nobody was refused for has a series")
	}
	if _, ok := value(t, reg, "epsproxy_relay_bytes_total", nil); ok {
		t.Error("relay series without a relay")
	}
}

// pipe is one relayed connection: the test holds client and server, the relay a and b.
func pipe(t *testing.T, rl *relay.Relay, tag string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accept := func() *net.TCPConn {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.TCPConn)
	}
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := accept()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = accept()
	for _, c := range []net.Conn{client, server} {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		t.Cleanup(func() { c.Close() })
	}
	if err := rl.AddConns(a, b.(*net.TCPConn), nil, nil, tag); err != nil {
		t.Fatal(err)
	}
	return client, server
}

func send(t *testing.T, from, to net.Conn, n int) {
	t.Helper()
	if _, err := from.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(to, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}

// The bytes of an open connection are in the domain's counters at the next scrape, and stay
// there once it has finished; the active gauge follows the connection.
func TestRelayBytesWhileOpen(t *testing.T) {
	var d *metrics.Domains
	done := make(chan struct{}, 4)
	rl, err := relay.New(relay.Config{Loops: 2, OnDone: func(st relay.Stats) { d.PairDone(st); done <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.Close() })
	d = metrics.NewDomains(reasons, rl, slog.New(slog.DiscardHandler))
	reg := prometheus.NewRegistry()
	reg.MustRegister(d)
	d.Get("a.test").Accepted()
	c1, s1 := pipe(t, rl, "a.test")
	c2, s2 := pipe(t, rl, "a.test")
	send(t, c1, s1, 1000)
	send(t, s1, c1, 300)
	send(t, c2, s2, 24)
	up := map[string]string{"domain": "a.test", "direction": "upstream"}
	down := map[string]string{"domain": "a.test", "direction": "downstream"}
	active := map[string]string{"domain": "a.test"}
	if v := mustValue(t, reg, "epsproxy_relay_bytes_total", up); v != 1024 {
		t.Errorf("upstream bytes while open = %v, want 1024", v)
	}
	if v := mustValue(t, reg, "epsproxy_relay_bytes_total", down); v != 300 {
		t.Errorf("downstream bytes while open = %v, want 300", v)
	}
	if v := mustValue(t, reg, "epsproxy_relay_active_connections", active); v != 2 {
		t.Errorf("active = %v, want 2", v)
	}
	c1.Close()
	s1.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the closed pair never finished")
	}
	if v := mustValue(t, reg, "epsproxy_relay_bytes_total", up); v != 1024 {
		t.Errorf("upstream bytes after one closed = %v, want 1024", v)
	}
	if v := mustValue(t, reg, "epsproxy_relay_active_connections", active); v != 1 {
		t.Errorf("active after one closed = %v, want 1", v)
	}
	// A tag without a label (never given to Get) counts under Other.
	c3, s3 := pipe(t, rl, "nobody.test")
	send(t, c3, s3, 5)
	if v := mustValue(t, reg, "epsproxy_relay_bytes_total", map[string]string{"domain": metrics.Other, "direction": "upstream"}); v != 5 {
		t.Errorf("upstream bytes under %s = %v, want 5", metrics.Other, v)
	}
}

// A call's method is its own label only when known; results are a fixed few classes.
func TestCalls(t *testing.T) {
	c := metrics.NewCalls("test_calls_seconds", "test", func(m string) bool { return m == "known" })
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	c.Observe("known", time.Millisecond, nil)
	c.Observe("made-up", time.Millisecond, jsonrpc.Errorf(jsonrpc.CodeTimeout, "slow"))
	if v := mustValue(t, reg, "epsproxy_test_calls_seconds", map[string]string{"method": "known", "result": "ok"}); v != 1 {
		t.Errorf("known ok = %v, want 1", v)
	}
	if v := mustValue(t, reg, "epsproxy_test_calls_seconds", map[string]string{"method": metrics.OtherMethod, "result": "timeout"}); v != 1 {
		t.Errorf("other timeout = %v, want 1", v)
	}
	for err, want := range map[error]string{
		nil: "ok", jsonrpc.Errorf(jsonrpc.CodeNotFound, ""): "not_found", jsonrpc.Errorf(jsonrpc.CodeInvalidParams, ""): "bad_request",
		jsonrpc.Errorf(jsonrpc.CodeUnreachable, ""): "unreachable", jsonrpc.Errorf(777, ""): "error", errors.New("plain"): "internal_error",
	} {
		if got := metrics.Result(err); got != want {
			t.Errorf("Result(%v) = %q, want %q", err, got, want)
		}
	}
}

// A process's registry has the Go and process collectors, and nothing goes to the default one.
func TestNewRegistry(t *testing.T) {
	reg := metrics.NewRegistry()
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := value(t, reg, name, nil); !ok {
			t.Errorf("no %s", name)
		}
	}
}

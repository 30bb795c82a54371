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

	"epsproxy/engine/relay"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/metrics"
)

// gather returns g's series, one value each (Flatten).
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return metrics.Flatten(fams)
}

// want checks the named series' values.
func want(t *testing.T, g prometheus.Gatherer, series map[string]float64) {
	t.Helper()
	got := gather(t, g)
	for k, v := range series {
		if have, ok := got[k]; !ok || have != v {
			t.Errorf("%s = %v (present: %v), want %v", k, have, ok, v)
		}
	}
}

var reasons = []string{"no_route", "too_slow"}

// A name gets its own label until MaxDomains have one; later names share Other, with one
// warning. The fixed labels are there from the start, "" is NoName, and a name spelled like a
// fixed label counts under Other.
func TestDomainLabelsAreBounded(t *testing.T) {
	var logs bytes.Buffer
	d := metrics.NewDomains(reasons, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	other := d.Get(metrics.Other)
	if d.Get("") != d.NoName() || d.NoName() == d.Unannounced() || d.Unannounced() == other || d.NoName() == other {
		t.Fatal("the fixed labels are not distinct, or \"\" is not NoName")
	}
	if d.Get(metrics.NoName) != other || d.Get(metrics.Unannounced) != other {
		t.Fatal("a name spelled like a fixed label does not count under Other")
	}
	first := d.Get("a.test")
	if d.Get("a.test") != first {
		t.Fatal("a name got two labels")
	}
	for i := 1; i < metrics.MaxDomains; i++ {
		if d.Get(fmt.Sprintf("n%d.test", i)) == other {
			t.Fatalf("name %d of %d has no label of its own", i+1, metrics.MaxDomains)
		}
	}
	for i := range 3 {
		if d.Get(fmt.Sprintf("late%d.test", i)) != other {
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
	want(t, reg, map[string]float64{
		`epsproxy_connections_accepted_total{domain="` + metrics.Other + `"}`:   1,
		`epsproxy_connections_refused_total{domain="a.test",reason="too_slow"}`: 1,
	})
	never := map[string]bool{
		`epsproxy_connections_refused_total{domain="a.test",reason="no_route"}`:    true, // nobody was refused for it
		`epsproxy_connections_accepted_total{domain="` + metrics.NoName + `"}`:     true, // nothing is accepted without a name
		`epsproxy_connections_relayed_total{domain="` + metrics.Unannounced + `"}`: true, // nor relayed unannounced
	}
	for k := range gather(t, reg) {
		if strings.HasPrefix(k, "epsproxy_relay_") || never[k] {
			t.Errorf("series %s: a relay series without a relay, or a series that cannot move", k)
		}
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
	const (
		up     = `epsproxy_relay_bytes_total{direction="upstream",domain="a.test"}`
		down   = `epsproxy_relay_bytes_total{direction="downstream",domain="a.test"}`
		active = `epsproxy_relay_active_connections{domain="a.test"}`
	)
	want(t, reg, map[string]float64{up: 1024, down: 300, active: 2})
	c1.Close()
	s1.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the closed pair never finished")
	}
	want(t, reg, map[string]float64{up: 1024, down: 300, active: 1})
	// A tag without a label (never given to Get) counts under Other.
	c3, s3 := pipe(t, rl, "nobody.test")
	send(t, c3, s3, 5)
	want(t, reg, map[string]float64{`epsproxy_relay_bytes_total{direction="upstream",domain="` + metrics.Other + `"}`: 5})
}

// A call's method is its own label only when known; results are a fixed few classes.
func TestCalls(t *testing.T) {
	c := metrics.NewCalls("test_calls_seconds", "test", func(m string) bool { return m == "known" })
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	c.Observe("known", time.Millisecond, nil)
	c.Observe("made-up", time.Millisecond, jsonrpc.Errorf(jsonrpc.CodeTimeout, "slow"))
	want(t, reg, map[string]float64{
		`epsproxy_test_calls_seconds{method="known",result="ok"}`:                            1,
		`epsproxy_test_calls_seconds{method="` + metrics.OtherMethod + `",result="timeout"}`: 1,
	})
	for err, class := range map[error]string{
		nil: "ok", jsonrpc.Errorf(jsonrpc.CodeNotFound, ""): "not_found", jsonrpc.Errorf(jsonrpc.CodeInvalidParams, ""): "bad_request",
		jsonrpc.Errorf(jsonrpc.CodeUnreachable, ""): "unreachable", jsonrpc.Errorf(777, ""): "error", errors.New("plain"): "internal_error",
	} {
		if got := metrics.Result(err); got != class {
			t.Errorf("Result(%v) = %q, want %q", err, got, class)
		}
	}
}

// A process's registry has the Go and process collectors.
func TestNewRegistry(t *testing.T) {
	got := gather(t, metrics.NewRegistry())
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
}

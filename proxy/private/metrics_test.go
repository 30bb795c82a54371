package private

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/epsclient"
	"epsproxy/internal/metrics"
)

// A dial-back counts under the announced name, with its bytes while the pair is open; a name not
// announced to the caller counts under the one label for all of them.
func TestMetricsOfADialBack(t *testing.T) {
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	backend, pub := listen(), listen()
	p := newProxy(t, Settings{InternalEndpoint: backend.Addr().String(), Announce: []Announcement{{Domain: "app.example", Proxy: "pub.test"}},
		Endpoints: map[string]string{"pub.test": pub.Addr().String()}}, t.TempDir())
	reg := prometheus.NewRegistry()
	if err := p.Metrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, domain := range []string{"other.example", "app.example"} {
		_, _ = epsclient.Typed(p.incomingConnection)(ctx, call("incomingConnection", "pub.test", nil,
			map[string]string{"domain": domain, "token": tok, "endpoint": pub.Addr().String()}))
	}
	// No worker runs: the test takes the queued dial-back and runs it.
	go p.dialBack(<-p.dials)
	accept := func(ln net.Listener) net.Conn {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	public, internal := accept(pub), accept(backend)
	relay := func(from, to net.Conn, n int) {
		t.Helper()
		if _, err := from.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(to, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.ReadFull(public, make([]byte, 32)); err != nil {
		t.Fatalf("token: %v", err)
	}
	relay(public, internal, 10)
	relay(internal, public, 20)

	// The bytes move as soon as the relay has the pair; dialBack counts the pair as relayed
	// once AddConns has returned, which may be a moment later.
	var got map[string]float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got = metrics.Flatten(fams)
		if got[`epsproxy_connections_relayed_total{domain="app.example"}`] > 0 || time.Now().After(deadline) {
			break
		}
	}
	for k, v := range map[string]float64{
		`epsproxy_connections_accepted_total{domain="app.example"}`:                                       1,
		`epsproxy_connections_relayed_total{domain="app.example"}`:                                        1,
		`epsproxy_relay_bytes_total{direction="upstream",domain="app.example"}`:                           10,
		`epsproxy_relay_bytes_total{direction="downstream",domain="app.example"}`:                         20,
		`epsproxy_relay_active_connections{domain="app.example"}`:                                         1,
		`epsproxy_connections_accepted_total{domain="` + metrics.Unannounced + `"}`:                       1,
		`epsproxy_connections_refused_total{domain="` + metrics.Unannounced + `",reason="not_announced"}`: 1,
		`epsproxy_announcements{state="live",store="file"}`:                                               1,
		`epsproxy_dial_backs_queued`:                                                                      0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got[`epsproxy_connections_accepted_total{domain="other.example"}`]; ok {
		t.Error("a name not announced has a label of its own")
	}
}

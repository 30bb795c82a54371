package public

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/bench/load"
	"epsproxy/epsclient"
	"epsproxy/internal/metrics"
	"epsproxy/proxy/wire"
)

// series gathers reg into one value per series (metrics.Flatten).
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return metrics.Flatten(fams)
}

// Through a running public proxy: a client relayed to a standby socket counts under its
// announcement, with its bytes while the connection is open; a name nobody announced counts under
// the one label for all of them; a bad token on the internal port counts as an internal refusal;
// the standby gauges, the announcements and the engine's phases are read at the scrape.
func TestMetricsOfARunningProxy(t *testing.T) {
	p := newProxy(t)
	reg := prometheus.NewRegistry()
	if err := p.Metrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	ctx := context.Background()
	if _, err := epsclient.Typed(p.announceConnections)(ctx, call(wire.AnnounceConnections, "a.test", []string{".a.example"}, `{"connections": [{"domain": "www.a.example"}]}`)); err != nil {
		t.Fatal(err)
	}
	toks, _, err := p.eng.Reserve("a.test", 2, wire.SocketMode{})
	if err != nil {
		t.Fatal(err)
	}
	private := dialT(t, p.s.InternalBind)
	if _, err := private.Write(toks[0][:]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the standby socket is parked", func() bool { parked, _ := p.eng.Standby(); return parked == 1 })
	got := series(t, reg)
	for k, v := range map[string]float64{
		`epsproxy_standby_parked_sockets{operator="a.test"}`:   1,
		`epsproxy_standby_tokens{operator="a.test"}`:           1,
		`epsproxy_announcements{state="live",store="file"}`:    1,
		`epsproxy_announcements{state="expired",store="file"}`: 0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	hello, err := load.ClientHelloRecord(&tls.Config{ServerName: "www.a.example"})
	if err != nil {
		t.Fatal(err)
	}
	client := dialT(t, p.s.TLSBind)
	if _, err := client.Write(hello); err != nil {
		t.Fatal(err)
	}
	readN(t, private, len(hello))
	if _, err := private.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	readN(t, client, 100)
	if _, err := client.Write(make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	readN(t, private, 50)

	nobody, err := load.ClientHelloRecord(&tls.Config{ServerName: "nobody.example"})
	if err != nil {
		t.Fatal(err)
	}
	refused := dialT(t, p.s.TLSBind)
	if _, err := refused.Write(nobody); err != nil {
		t.Fatal(err)
	}
	readN(t, refused, 0)
	bad := dialT(t, p.s.InternalBind)
	if _, err := bad.Write(make([]byte, wire.TokenSize)); err != nil {
		t.Fatal(err)
	}
	readN(t, bad, 0)

	want := map[string]float64{
		`epsproxy_connections_accepted_total{domain="www.a.example"}`:                                1,
		`epsproxy_connections_relayed_total{domain="www.a.example"}`:                                 1,
		`epsproxy_relay_bytes_total{direction="upstream",domain="www.a.example"}`:                    float64(len(hello) + 50),
		`epsproxy_relay_bytes_total{direction="downstream",domain="www.a.example"}`:                  100,
		`epsproxy_relay_active_connections{domain="www.a.example"}`:                                  1,
		`epsproxy_connections_accepted_total{domain="` + metrics.Unannounced + `"}`:                  1,
		`epsproxy_connections_refused_total{domain="` + metrics.Unannounced + `",reason="no_route"}`: 1,
		`epsproxy_internal_connections_refused_total{reason="unknown_token"}`:                        1,
		`epsproxy_standby_parked_sockets{operator="a.test"}`:                                         0,
	}
	waitUntil(t, "the refusals are counted", func() bool {
		got = series(t, reg)
		return got[`epsproxy_internal_connections_refused_total{reason="unknown_token"}`] == 1 &&
			got[`epsproxy_connections_refused_total{domain="`+metrics.Unannounced+`",reason="no_route"}`] == 1
	})
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got[`epsproxy_connections_accepted_total{domain="nobody.example"}`]; ok {
		t.Error("an unannounced name has a label of its own")
	}
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readN reads exactly n bytes from c; with n = 0 it waits for the peer to close c.
func readN(t *testing.T, c net.Conn, n int) {
	t.Helper()
	if n == 0 {
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Fatalf("%d bytes from a connection that should have been closed", len(b))
		}
		return
	}
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

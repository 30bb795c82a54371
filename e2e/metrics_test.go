package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"maps"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"epsproxy/internal/chain"
	"epsproxy/internal/metrics"
)

// Prometheus metrics over the real processes: each one's /metrics after traffic, checked by
// promtool and for the figures an operator would look at.

// scrape reads a process's /metrics: the text as served, and one value per series.
func scrape(t *testing.T, c *chain.Chain, name string) ([]byte, map[string]float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := c.Metrics(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s /metrics does not parse: %v\n%s", name, err, body)
	}
	return body, metrics.Flatten(slices.Collect(maps.Values(fams)))
}

// promtoolCheck runs `promtool check metrics` on a scrape: the exposition is valid and follows
// Prometheus's naming rules. Without promtool (Debian: apt-get install prometheus; .ci/run
// installs it) the test is skipped once everything else has passed.
func promtoolCheck(t *testing.T, name string, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus): the scrapes were not linted")
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on %s: %v\n%s", name, err, out)
	}
}

// atLeast checks that each named series is at least the given value.
func atLeast(t *testing.T, name string, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if have, ok := got[k]; !ok || have < v {
			t.Errorf("%s: %s = %v (present: %v), want at least %v", name, k, have, ok, v)
		}
	}
}

const domainLabel = `{domain="` + chain.Domain + `"}`

// After traffic, each process serves metrics promtool accepts, and they show what a user would
// check: the domain's relayed connections and bytes (those of a connection still open
// included), a name nobody announced under the one label for all such names, and EPS calls in
// the histograms of the proxies' clients and of the nodes' deliveries.
func TestMetricsOverRealProcesses(t *testing.T) {
	c := newChain(t)
	procs := []string{chain.Public, chain.Private, chain.PublicEPS, chain.PrivateEPS}
	withAdmin(t, c, procs...)
	startAll(t, c)
	// The private proxy dials its standby sockets once its announcement went through: the
	// public proxy's gauge shows them, per operator.
	parked := `epsproxy_standby_parked_sockets{operator="private-proxy-1.ga"}`
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, got := scrape(t, c, chain.Public); got[parked] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still not above 0 after 30 s", parked)
		}
	}
	_, pub0 := scrape(t, c, chain.Public)
	_, priv0 := scrape(t, c, chain.Private)

	// Three requests, one connection each; their standby sockets come back (framed).
	cl := c.HTTPClient(c.Ports.PublicTLS, false)
	for range 3 {
		if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
			t.Fatalf("GET: %d %v", code, err)
		}
	}
	// One connection that stays open after 64 KiB each way.
	keep := c.HTTPClient(c.Ports.PublicTLS, true)
	defer keep.CloseIdleConnections()
	big := `{"data": "` + strings.Repeat("x", 64<<10) + `"}`
	if code, body, err := post(keep, big); err != nil || code != 200 || len(body) != len(big) {
		t.Fatalf("POST of 64 KiB: %d, %d bytes back, %v", code, len(body), err)
	}
	// A name nobody announced: refused at once.
	d := &net.Dialer{Timeout: 5 * time.Second}
	if conn, err := tls.DialWithDialer(d, "tcp", c.Ports.PublicTLS, &tls.Config{ServerName: "nobody.example", RootCAs: c.Roots}); err == nil {
		conn.Close()
		t.Fatal("a name nobody announced got a TLS session")
	}
	// An EPS call the private node delivers: the public operator asks what is announced to it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := c.Call(ctx, chain.PublicEPS, "private-proxy-1.ga.getAnnouncements", "{}"); err != nil {
		t.Fatalf("eps call: %v\n%s", err, out)
	}

	pubText, pub := scrape(t, c, chain.Public)
	privText, priv := scrape(t, c, chain.Private)
	delta := func(now, before map[string]float64, k string) float64 { return now[k] - before[k] }
	for _, p := range []struct {
		name        string
		now, before map[string]float64
	}{{chain.Public, pub, pub0}, {chain.Private, priv, priv0}} {
		if n := delta(p.now, p.before, "epsproxy_connections_relayed_total"+domainLabel); n < 4 {
			t.Errorf("%s: %v more connections relayed for %s, want at least 4", p.name, n, chain.Domain)
		}
		up := `epsproxy_relay_bytes_total{direction="upstream",domain="` + chain.Domain + `"}`
		down := `epsproxy_relay_bytes_total{direction="downstream",domain="` + chain.Domain + `"}`
		// Only the open connection carried 64 KiB: it is counted while it lives.
		if n := delta(p.now, p.before, up); n < 64<<10 {
			t.Errorf("%s: %v more bytes upstream, want at least 64 KiB (the open connection's)", p.name, n)
		}
		if n := delta(p.now, p.before, down); n < 64<<10 {
			t.Errorf("%s: %v more bytes downstream, want at least 64 KiB (the open connection's)", p.name, n)
		}
		if n := p.now["epsproxy_relay_active_connections"+domainLabel]; n < 1 {
			t.Errorf("%s: %v active connections for %s, want the open one at least", p.name, n, chain.Domain)
		}
	}
	if n := delta(pub, pub0, "epsproxy_standby_reused_total"); n < 1 {
		t.Errorf("public proxy: %v standby sockets parked again after the three requests, want at least 1", n)
	}
	unannounced := `{domain="` + metrics.Unannounced + `"}`
	if n := delta(pub, pub0, `epsproxy_connections_refused_total{domain="`+metrics.Unannounced+`",reason="no_route"}`); n != 1 {
		t.Errorf("public proxy: %v refusals for no_route under %s, want 1", n, metrics.Unannounced)
	}
	if n := delta(pub, pub0, "epsproxy_connections_accepted_total"+unannounced); n != 1 {
		t.Errorf("public proxy: %v accepted under %s, want 1", n, metrics.Unannounced)
	}
	for k := range pub {
		if strings.Contains(k, "nobody.example") {
			t.Errorf("public proxy: the unannounced name has a series of its own: %s", k)
		}
	}
	atLeast(t, chain.Public, pub, map[string]float64{
		`epsproxy_announcements{state="live",store="file"}`:      1,
		`epsproxy_standby_tokens{operator="private-proxy-1.ga"}`: 0, // present
		"go_goroutines":    1,
		"process_open_fds": 1,
	})
	atLeast(t, chain.Private, priv, map[string]float64{
		`epsproxy_eps_client_call_duration_seconds{method="announceConnections",result="ok"}`: 1,
		`epsproxy_eps_client_call_duration_seconds{method="reserveConnections",result="ok"}`:  1,
		`epsproxy_announcements{state="live",store="file"}`:                                   1,
	})
	pubEPSText, pubEPS := scrape(t, c, chain.PublicEPS)
	privEPSText, privEPS := scrape(t, c, chain.PrivateEPS)
	atLeast(t, chain.PublicEPS, pubEPS, map[string]float64{
		`epsproxy_eps_delivery_duration_seconds{method="announceConnections",result="ok"}`: 1,
		`epsproxy_eps_delivery_duration_seconds{method="reserveConnections",result="ok"}`:  1,
	})
	if n := privEPS[`epsproxy_eps_delivery_duration_seconds{method="getAnnouncements",result="ok"}`]; n != 1 {
		t.Errorf("private node: %v deliveries of getAnnouncements, want the one eps call", n)
	}
	if !bytes.Contains(privEPSText, []byte(`epsproxy_eps_delivery_duration_seconds_bucket{method="getAnnouncements",result="ok",le="`)) {
		t.Errorf("private node: no latency buckets for getAnnouncements:\n%s", privEPSText)
	}
	for name, body := range map[string][]byte{chain.Public: pubText, chain.Private: privText, chain.PublicEPS: pubEPSText, chain.PrivateEPS: privEPSText} {
		promtoolCheck(t, name, body)
	}
}

// A clustered public proxy says whether it follows the shared store: up with Redis, down while
// Redis is dead, up again once it is back.
func TestClusterStoreMetrics(t *testing.T) {
	c, r := newClusterChain(t)
	const up = "epsproxy_cluster_store_up"
	waitMetric := func(want float64) []byte {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			body, got := scrape(t, c, chain.Public)
			if got[up] == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v, want %v", up, got[up], want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	body := waitMetric(1)
	// The other instance shows up with its first heartbeat, which may follow the store coming up.
	want := map[string]float64{
		`epsproxy_announcements{state="live",store="redis"}`: 1,
		"epsproxy_cluster_instances":                         2,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, got := scrape(t, c, chain.Public)
		all := true
		for k, v := range want {
			all = all && got[k] >= v
		}
		if all || time.Now().After(deadline) {
			atLeast(t, chain.Public, got, want)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.Kill()
	waitMetric(0)
	r.Restart()
	waitMetric(1)
	promtoolCheck(t, chain.Public, body)
}

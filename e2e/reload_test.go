package e2e

import (
	"context"
	"crypto/tls"
	"strings"
	"syscall"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// Reloads (SIGHUP) over the real processes: under a steady stream of clients, none fails.

// underLoad runs round(1..3) while the seed's GET goes through the public proxy from four
// goroutines, and fails the test if any request failed.
func underLoad(t *testing.T, c *chain.Chain, what string, round func(i int)) {
	t.Helper()
	s := startStream(c, 4, c.Ports.PublicTLS)
	for i := 1; i <= 3; i++ {
		time.Sleep(300 * time.Millisecond)
		round(i)
	}
	time.Sleep(300 * time.Millisecond)
	results := s.end()
	failed := 0
	for _, r := range results {
		if r.err != nil {
			if failed == 0 {
				t.Errorf("a request across the reloads of %s failed: %v", what, r.err)
			}
			failed++
		}
	}
	if failed > 0 || len(results) < 20 {
		t.Fatalf("%d of %d requests failed across three reloads of %s", failed, len(results), what)
	}
	t.Logf("%d requests, none failed, across three reloads of %s", len(results), what)
}

// hup sends SIGHUP to a process and waits until it has logged its n-th "reloaded".
func hup(t *testing.T, c *chain.Chain, name string, n int) {
	t.Helper()
	if err := c.Signal(name, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c, name, "msg=reloaded", n)
}

func waitLog(t *testing.T, c *chain.Chain, name, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(c.Log(name), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q %d times:\n%s", name, want, n, tail(c.Log(name), 10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEPSNodeReloadsTheDirectoryWithoutDroppingCalls(t *testing.T) {
	c := newChain(t)
	// Every client takes the signaled path, so the nodes carry every client.
	if err := c.WriteOverlay("roles/private-proxy-1", "9999_no_standby.yml", "private: {standby: -1}\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.EnableAdmin(chain.Public); err != nil {
		t.Fatal(err)
	}
	startAll(t, c)

	underLoad(t, c, "both nodes", func(i int) {
		for _, n := range []string{chain.PublicEPS, chain.PrivateEPS} {
			hup(t, c, n, i)
		}
	})

	// Standby turned on by a reload of the private proxy, off at its start: its pool fills.
	if err := c.WriteOverlay("roles/private-proxy-1", "9999_no_standby.yml", "private: {standby: 6}\n"); err != nil {
		t.Fatal(err)
	}
	hup(t, c, chain.Private, 1)
	waitCounter(t, c, chain.Public, "StandbyParked", 6)

	// A grant removed from the directory takes effect at the next call.
	call := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Call(ctx, chain.PrivateEPS, "public-proxy-1.ga.getAnnouncements", `{}`)
	}
	if out, err := call(); err != nil || !strings.Contains(out, chain.Domain) {
		t.Fatalf("getAnnouncements before the change: %v\n%s", err, out)
	}
	revoke := `operators:
  public-proxy-1.ga:
    services:
      - name: proxy
        methods:
          - {name: announceConnections, groups: [private-proxies]}
          - {name: getAnnouncements, groups: [public-proxies]}
          - {name: reserveConnections, groups: [private-proxies]}
`
	if err := c.WriteOverlay("directory", "9999_revoke.yml", revoke); err != nil {
		t.Fatal(err)
	}
	hup(t, c, chain.PublicEPS, 4)
	if out, err := call(); err == nil || !strings.Contains(out+err.Error(), "403") {
		t.Errorf("getAnnouncements after its grant was removed: want 403, got %v\n%q", err, out)
	}

	// A directory that does not load is refused in one line naming the file and the key; the
	// node keeps the running directory and serves.
	if err := c.WriteOverlay("directory", "9999_revoke.yml", "operators:\n  public-proxy-1.ga:\n    groups: 7\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(chain.PublicEPS, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c, chain.PublicEPS, "reload refused", 1)
	line := lastLine(c.Log(chain.PublicEPS), "reload refused")
	if !strings.Contains(line, "9999_revoke.yml") || !strings.Contains(line, "groups") {
		t.Errorf("the refusal does not name the file and the key: %s", line)
	}
	if code, _, err := get(c.HTTPClient(c.Ports.PublicTLS, false), chain.Domain); err != nil || code != 200 {
		t.Errorf("after a refused reload: %d %v", code, err)
	}
}

func TestPrivateProxyReloadsItsAnnouncementsUnderLoad(t *testing.T) {
	c := newChain(t)
	if err := c.EnableAdmin(chain.Public); err != nil {
		t.Fatal(err)
	}
	startAll(t, c)
	// A name added to the file is announced on SIGHUP; removed again, it is withdrawn.
	both := "private:\n  announce:\n    - {domain: \"test.internal-server.local\", proxy: \"public-proxy-1.ga\"}\n    - {domain: \"extra.internal-server.local\", proxy: \"public-proxy-1.ga\"}\n"
	one := "private:\n  announce:\n    - {domain: \"test.internal-server.local\", proxy: \"public-proxy-1.ga\"}\n"
	steps := []struct {
		body string
		want int64
	}{{both, 2}, {one, 1}, {both, 2}}
	underLoad(t, c, "the private proxy", func(i int) {
		if err := c.WriteOverlay("roles/private-proxy-1", "9999_reload.yml", steps[i-1].body); err != nil {
			t.Fatal(err)
		}
		hup(t, c, chain.Private, i)
		waitCounter(t, c, chain.Public, "Announcements", steps[i-1].want)
	})

	// A broken file is refused in one line naming the file and the key; the proxy keeps serving
	// what it had, and a key only a restart applies is named as such.
	if err := c.WriteOverlay("roles/private-proxy-1", "9999_reload.yml", "private: {standby: many}\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(chain.Private, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c, chain.Private, "reload refused", 1)
	if l := lastLine(c.Log(chain.Private), "reload refused"); !strings.Contains(l, "9999_reload.yml") || !strings.Contains(l, "private.standby") {
		t.Errorf("the refusal does not name the file and the key: %s", l)
	}
	if code, _, err := get(c.HTTPClient(c.Ports.PublicTLS, false), chain.Domain); err != nil || code != 200 {
		t.Errorf("after a refused reload: %d %v", code, err)
	}
	if err := c.WriteOverlay("roles/private-proxy-1", "9999_reload.yml", both+"  workers: 3\n  dial_timeout: 3s\n"); err != nil {
		t.Fatal(err)
	}
	hup(t, c, chain.Private, 4)
	if l := lastLine(c.Log(chain.Private), "until a restart"); !strings.Contains(l, "private.workers") || strings.Contains(l, "dial_timeout") {
		t.Errorf("the restart-only key workers is not named, or dial_timeout, which a reload applies, is: %q", l)
	}

	// standby raised: the pool dials the difference, and the public proxy parks them.
	if err := c.WriteOverlay("roles/private-proxy-1", "9999_reload.yml", both+"  standby: 90\n"); err != nil {
		t.Fatal(err)
	}
	hup(t, c, chain.Private, 5)
	waitCounter(t, c, chain.Public, "StandbyParked", 90)
	if code, _, err := get(c.HTTPClient(c.Ports.PublicTLS, false), chain.Domain); err != nil || code != 200 {
		t.Errorf("after standby was raised: %d %v", code, err)
	}
}

func lastLine(log, want string) string {
	line := ""
	for l := range strings.Lines(log) {
		if strings.Contains(l, want) {
			line = l
		}
	}
	return line
}

func TestPublicProxyReloadsItsLimitsUnderLoad(t *testing.T) {
	c := newChain(t)
	if err := c.EnableAdmin(chain.Public); err != nil {
		t.Fatal(err)
	}
	startAll(t, c)
	underLoad(t, c, "the public proxy", func(i int) { hup(t, c, chain.Public, i) })

	// A rate limit set in the file applies to the next connections; lifted, they pass again.
	reload := func(body string, n int) {
		t.Helper()
		if err := c.WriteOverlay("roles/public-proxy-1", "9999_reload.yml", body); err != nil {
			t.Fatal(err)
		}
		hup(t, c, chain.Public, n)
	}
	cl := c.HTTPClient(c.Ports.PublicTLS, false)
	before := counter(t, c, chain.Public, "RateLimited")
	reload("public: {rate_limits: {public: {limit: 2, window: 1m}}, loops: 3}\n", 4)
	ok := 0
	for range 6 {
		if code, _, err := get(cl, chain.Domain); err == nil && code == 200 {
			ok++
		}
	}
	if ok > 2 || counter(t, c, chain.Public, "RateLimited") < before+4 {
		t.Errorf("with a limit of 2 per minute, %d of 6 requests passed and %d were counted as rate limited", ok, counter(t, c, chain.Public, "RateLimited")-before)
	}
	if l := lastLine(c.Log(chain.Public), "until a restart"); !strings.Contains(l, "public.loops") || strings.Contains(l, "rate_limits") {
		t.Errorf("the warning should name public.loops and not the applied rate limit: %q", l)
	}
	reload("public: {rate_limits: {public: {limit: 1000, window: 1s}}}\n", 5)
	if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
		t.Errorf("after lifting the limit: %d %v", code, err)
	}

	// max_pairs lowered to 1 while a client holds a relayed connection: it keeps it, the next
	// client is refused; once it leaves, clients pass again.
	reload("public: {max_pairs: 1}\n", 6)
	held, err := tls.Dial("tcp", c.Ports.PublicTLS, &tls.Config{RootCAs: c.Roots, ServerName: chain.Domain})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if code, _, err := get(cl, chain.Domain); err == nil {
		t.Errorf("a second client under max_pairs 1 was served: %d", code)
	}
	if l := lastLine(c.Log(chain.Public), "until a restart"); strings.Contains(l, "max_pairs") {
		t.Errorf("max_pairs, which a reload applies, is named as needing a restart: %q", l)
	}
	held.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, err := get(cl, chain.Domain)
		if err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the held client left and the next is still refused: %d %v", code, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

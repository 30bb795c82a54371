package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"epsproxy/internal/chain"
	"epsproxy/internal/testnet"
)

// The scale-out chain of make demo-cluster, over real processes and a real redis-server: two
// public proxy instances sharing their announcements through Redis, two private proxies of one
// operator serving the same name, their nodes delivering to both.

func newClusterChain(t *testing.T, overlays ...[3]string) (*chain.Chain, *testnet.Redis) {
	t.Helper()
	r := testnet.StartRedis(t) // registered first, so stopped after the chain
	root, err := chain.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	buildOnce.Do(func() { binDir, buildErr = buildBin(root) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	c, err := chain.NewCluster(root, t.TempDir(), binDir, testnet.Addr, r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{chain.Public, chain.PublicB, chain.Private, chain.PrivateB} {
		if err := c.EnableAdmin(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range overlays {
		if err := c.WriteOverlay(o[0], o[1], o[2]); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := c.StopAll(10 * time.Second); err != nil {
			t.Logf("stopping the chain: %v", err) // the killed processes exit non-zero
		}
		if t.Failed() {
			for _, n := range append(chain.ClusterAll, chain.OtherEPS) {
				if log := c.Log(n); log != "" {
					t.Logf("--- %s log (tail) ---\n%s", n, tail(log, 30))
				}
			}
		}
	})
	startAll(t, c)
	return c, r
}

// counter reads one field of a process's stats.
func counter(t *testing.T, c *chain.Chain, name, field string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Stats(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Counters[field]
}

func waitCounter(t *testing.T, c *chain.Chain, name, field string, want int64) time.Duration {
	t.Helper()
	start := time.Now()
	for counter(t, c, name, field) != want {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s %s = %d, want %d", name, field, counter(t, c, name, field), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestClusterServesAnnouncementsFromEitherInstance(t *testing.T) {
	c, _ := newClusterChain(t)
	for _, addr := range []string{c.Ports.PublicTLS, c.Ports.PublicTLSB} {
		code, body, err := get(c.HTTPClient(addr, false), chain.Domain)
		if err != nil || code != 200 || strings.TrimSpace(body) != `{"message": "success"}` {
			t.Fatalf("the seed's curl at %s: %d %q %v", addr, code, body, err)
		}
	}
	// Announced through whichever instance the node delivers to, served by both.
	for i, name := range []string{"one.internal-server.local", "two.internal-server.local", "three.internal-server.local"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := c.Call(ctx, chain.PrivateEPS, "public-proxy-1.ga.announceConnections", `{"connections":[{"domain":"`+name+`"}]}`)
		cancel()
		if err != nil || !strings.Contains(out, "null") {
			t.Fatalf("announcing %s: %v\n%s", name, err, out)
		}
		want := int64(2 + i)
		a := waitCounter(t, c, chain.Public, "Announcements", want)
		b := waitCounter(t, c, chain.PublicB, "Announcements", want)
		t.Logf("%s: in instance A's table %v and B's %v after the call returned", name, a.Round(time.Millisecond), b.Round(time.Millisecond))
	}
}

// A second operator may announce names to the public proxy (the directory makes other-operator.ga
// a private proxy too, granted the same suffix): the name's owner is decided in Redis, whichever
// instance each call reaches.
const secondAnnouncer = `operators:
  other-operator.ga:
    groups: [operators, private-proxies]
    settings:
      - {service: proxy, operator: private-proxy-1.ga, settings: {allowed_domains: [".internal-server.local"]}}
      - {service: proxy, operator: public-proxy-1.ga, settings: {allowed_domains: [".internal-server.local"]}}
`

func announceAs(t *testing.T, c *chain.Chain, node, name string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Call(ctx, node, "public-proxy-1.ga.announceConnections", `{"connections":[{"domain":"`+name+`"}]}`)
}

func TestClusterOwnersAreDecidedOnceForAllInstances(t *testing.T) {
	c, _ := newClusterChain(t, [3]string{"directory", "9999_second_announcer.yml", secondAnnouncer})
	if err := c.Start(chain.OtherEPS); err != nil {
		t.Fatal(err)
	}
	// The node just started: wait until it answers.
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		out, err := announceAs(t, c, chain.OtherEPS, chain.Domain)
		if err == nil || time.Since(start) > 10*time.Second {
			break
		}
		t.Logf("waiting for the other operator's node: %v %s", err, out)
	}
	// private-proxy-1.ga holds the demo's name: the other operator is refused by every instance
	// (the node spreads the calls over both).
	for i := range 4 {
		out, err := announceAs(t, c, chain.OtherEPS, chain.Domain)
		if err != nil || !strings.Contains(out, "409") {
			t.Fatalf("call %d: announcing a name another operator holds: %v\n%s", i, err, out)
		}
	}
	// Two operators race for one name, through both instances at once: one owner each time.
	for round := range 5 {
		name := fmt.Sprintf("race%d.internal-server.local", round)
		var wg sync.WaitGroup
		outs := make([]string, 2)
		for i, node := range []string{chain.PrivateEPS, chain.OtherEPS} {
			wg.Go(func() {
				out, err := announceAs(t, c, node, name)
				if err != nil {
					out = "error: " + err.Error() + "\n" + out
				}
				outs[i] = out
			})
		}
		wg.Wait()
		won, lost := 0, 0
		for _, out := range outs {
			switch {
			case strings.Contains(out, "409"):
				lost++
			case strings.Contains(out, "[null]") || strings.Contains(out, "[\n  null\n]"):
				won++
			default:
				t.Fatalf("round %d: unexpected answer %q", round, out)
			}
		}
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: %d won and %d lost %s: %q", round, won, lost, name, outs)
		}
	}
}

// result is one request of the steady stream.
type result struct {
	addr       string
	start, end time.Time
	err        error
}

// stream sends requests through the given TLS addresses, round robin, from workers goroutines,
// until stop; each on a new connection.
type stream struct {
	c       *chain.Chain
	mu      sync.Mutex
	addrs   []string
	results []result
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startStream(c *chain.Chain, workers int, addrs ...string) *stream {
	s := &stream{c: c, addrs: addrs, stop: make(chan struct{})}
	clients := map[string]*http.Client{}
	for _, a := range []string{c.Ports.PublicTLS, c.Ports.PublicTLSB} {
		cl := c.HTTPClient(a, false)
		cl.Timeout = 5 * time.Second
		clients[a] = cl
	}
	for w := range workers {
		s.wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-s.stop:
					return
				default:
				}
				s.mu.Lock()
				addr := s.addrs[i%len(s.addrs)]
				s.mu.Unlock()
				r := result{addr: addr, start: time.Now()}
				code, _, err := get(clients[addr], chain.Domain)
				if err == nil && code != 200 {
					err = &statusError{code}
				}
				r.end, r.err = time.Now(), err
				s.mu.Lock()
				s.results = append(s.results, r)
				s.mu.Unlock()
			}
		})
	}
	return s
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

// only sends every later request through addrs.
func (s *stream) only(addrs ...string) {
	s.mu.Lock()
	s.addrs = addrs
	s.mu.Unlock()
}

func (s *stream) end() []result {
	close(s.stop)
	s.wg.Wait()
	return s.results
}

func TestClusterSurvivesTheDeathOfAnyOneProcess(t *testing.T) {
	c, r := newClusterChain(t)
	A, B := c.Ports.PublicTLS, c.Ports.PublicTLSB
	s := startStream(c, 4, A, B)
	time.Sleep(2 * time.Second)

	// 1. A private proxy dies: only the requests it was relaying may fail.
	killPrivate := time.Now()
	c.Kill(chain.PrivateB)
	time.Sleep(2 * time.Second)

	// 2. A public instance dies: the other serves every request sent to it.
	killPublic := time.Now()
	c.Kill(chain.PublicB)
	s.only(A)
	time.Sleep(2 * time.Second)

	// 3. Redis dies: known names are still served; new announcements are refused, clearly.
	r.Kill()
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := c.Call(ctx, chain.PrivateEPS, "public-proxy-1.ga.announceConnections", `{"connections":[{"domain":"late.internal-server.local"}]}`)
	if err == nil || !strings.Contains(out, "unreachable") {
		t.Errorf("announcing while Redis is down: want a refusal saying the store is unreachable, got %v\n%s", err, out)
	}
	time.Sleep(time.Second)

	// Redis comes back empty (no persistence): the announcements flow again, and nothing
	// accepted before is lost.
	r.Restart()
	for {
		out, err = c.Call(ctx, chain.PrivateEPS, "public-proxy-1.ga.announceConnections", `{"connections":[{"domain":"late.internal-server.local"}]}`)
		if err == nil && strings.Contains(out, "null") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("announcements did not flow again after Redis came back: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	results := s.end()

	// The killed instance, restarted, finds both names in the store and serves the old one.
	if err := c.Start(chain.PublicB); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReadyAt(ctx, B); err != nil {
		t.Fatal(err)
	}
	waitCounter(t, c, chain.PublicB, "Announcements", 2)

	grace := 500 * time.Millisecond
	var failed, late int
	var toFirst time.Duration
	for _, res := range results {
		switch {
		case res.err == nil:
			if res.start.After(killPrivate) && (toFirst == 0 || res.end.Sub(killPrivate) < toFirst) {
				toFirst = res.end.Sub(killPrivate)
			}
		case res.addr == B && res.start.After(killPublic.Add(-5*time.Second)) && !res.start.After(killPublic.Add(grace)):
			failed++ // in flight to (or just sent to) the killed instance
		case res.start.After(killPrivate.Add(grace)):
			late++
			t.Errorf("request through %s started %v after the private proxy's death failed: %v", res.addr, res.start.Sub(killPrivate).Round(time.Millisecond), res.err)
		default:
			failed++
		}
	}
	ok := len(results) - failed - late
	t.Logf("%d requests: %d served, %d failed in flight, %d failed later; first client served after the private proxy's death %v after it",
		len(results), ok, failed, late, toFirst.Round(time.Millisecond))
	if ok < 100 {
		t.Errorf("only %d requests served", ok)
	}
	if late > 0 {
		t.Errorf("%d requests failed that started after the deaths had been noticed", late)
	}
}

func TestClusterSpreadsClientsOverBothPrivateProxies(t *testing.T) {
	c, _ := newClusterChain(t)
	// Each private proxy keeps standby sockets at each instance: both instances have some parked.
	for _, n := range []string{chain.Public, chain.PublicB} {
		deadline := time.Now().Add(10 * time.Second)
		for counter(t, c, n, "StandbyParked") == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no standby socket parked at %s", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	s := startStream(c, 4, c.Ports.PublicTLS, c.Ports.PublicTLSB)
	time.Sleep(3 * time.Second)
	results := s.end()
	for _, res := range results {
		if res.err != nil {
			t.Errorf("request through %s failed: %v", res.addr, res.err)
		}
	}
	// Connections are counted when they finish; give the last ones a moment.
	time.Sleep(200 * time.Millisecond)
	a, b := counter(t, c, chain.Private, "Relayed"), counter(t, c, chain.PrivateB, "Relayed")
	t.Logf("%d requests; private proxy A relayed %d, B %d", len(results), a, b)
	if a+b < int64(len(results)) {
		t.Errorf("the private proxies relayed %d connections for %d requests", a+b, len(results))
	}
	if min(a, b)*5 < a+b {
		t.Errorf("one private proxy carries less than a fifth of the load: A %d, B %d", a, b)
	}
}

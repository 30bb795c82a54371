package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/internal/chain"
	"epsproxy/internal/demoserver"
	"epsproxy/internal/testnet"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// newChain builds the commands once per test binary and prepares a chain in a temp dir, on
// ports from testnet.Addr's registry so that chains of parallel tests never collide.
func newChain(t *testing.T) *chain.Chain {
	t.Helper()
	root, err := chain.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	buildOnce.Do(func() { binDir, buildErr = buildBin(root) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	c, err := chain.New(root, t.TempDir(), binDir, testnet.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.StopAll(10 * time.Second); err != nil {
			t.Errorf("stopping the chain: %v", err)
		}
		if t.Failed() {
			for _, n := range append(chain.All, chain.OtherEPS) {
				if log := c.Log(n); log != "" {
					t.Logf("--- %s log (tail) ---\n%s", n, tail(log, 30))
				}
			}
		}
	})
	return c
}

// buildBin builds the commands into a new temporary directory.
func buildBin(root string) (string, error) {
	dir, err := os.MkdirTemp("", "e2e-bin-")
	if err != nil {
		return "", err
	}
	return dir, chain.Build(root, dir)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func startAll(t *testing.T, c *chain.Chain) {
	t.Helper()
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	ready(t, c)
}

func ready(t *testing.T, c *chain.Chain) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// load is n clients requesting the announced name through the public proxy, one new connection
// after another, until ctx ends; wait returns once they have all stopped.
type load struct {
	ok, failed atomic.Int64
	wg         sync.WaitGroup
}

func startLoad(ctx context.Context, c *chain.Chain, n int) *load {
	l := &load{}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			cl := c.HTTPClient(c.Ports.PublicTLS, false)
			for ctx.Err() == nil {
				if code, _, err := get(cl, chain.Domain); err == nil && code == 200 {
					l.ok.Add(1)
				} else {
					l.failed.Add(1)
					time.Sleep(10 * time.Millisecond) // a refused connect fails at once: do not spin
				}
			}
		}()
	}
	return l
}

func (l *load) wait() { l.wg.Wait() }

// get and post are the README's curl commands.
func get(cl *http.Client, host string) (int, string, error) {
	resp, err := cl.Get("https://" + host + "/jsonrpc")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func post(cl *http.Client, body string) (int, string, error) {
	resp, err := cl.Post("https://"+chain.Domain+"/jsonrpc", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestSeedDemo(t *testing.T) {
	c := newChain(t)
	startAll(t, c)
	cl := c.HTTPClient(c.Ports.PublicTLS, false)

	code, body, err := get(cl, chain.Domain)
	if err != nil || code != 200 || strings.TrimSpace(body) != `{"message": "success"}` {
		t.Fatalf("the README's GET: %d %q %v", code, body, err)
	}
	code, body, err = post(cl, `{"hello": ["world", 1]}`)
	if err != nil || code != 200 || body != `{"hello": ["world", 1]}` {
		t.Fatalf("POST echo: %d %q %v", code, body, err)
	}
	code, body, err = post(cl, `{not json`)
	if err != nil || code != 400 || !strings.Contains(body, "error") {
		t.Fatalf("POST of bad JSON: %d %q %v", code, body, err)
	}
	// The README's stress test, bounded: 500 requests at concurrency 25, one connection each.
	const total, conc = 500, 25
	var failed atomic.Int64
	var firstErr atomic.Value
	work := make(chan int, total)
	for i := range total {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := c.HTTPClient(c.Ports.PublicTLS, false)
			for i := range work {
				want := fmt.Sprintf(`{"i": %d}`, i)
				code, body, err := post(cl, want)
				if err != nil || code != 200 || body != want {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("request %d: %d %q %v", i, code, body, err))
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, total, firstErr.Load())
	}
}

// A name nobody announced never reaches the internal server: the public proxy closes the client
// after its hello.
func TestUnannouncedNameNeverReachesTheInternalServer(t *testing.T) {
	c := newChain(t)
	// The internal server runs in-process here, so the test can count its connections.
	dev := filepath.Join(c.Dir, "settings", "dev", "certs")
	srv, err := demoserver.New(c.Ports.Internal, filepath.Join(dev, "internal-server.crt"), filepath.Join(dev, "internal-server.key"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	for _, n := range chain.All[1:] {
		if err := c.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	ready(t, c)
	before := srv.Accepted()
	for _, host := range []string{"other.internal-server.local", "internal-server.local", "example.com"} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.Ports.PublicTLS, &tls.Config{RootCAs: c.Roots, ServerName: host})
		if err == nil {
			conn.Close()
			t.Errorf("a TLS session for %s was established", host)
		}
	}
	// Raw junk too.
	if conn, err := net.DialTimeout("tcp", c.Ports.PublicTLS, 5*time.Second); err == nil {
		_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: test.internal-server.local\r\n\r\n"))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := conn.Read(make([]byte, 1))
		conn.Close()
		if n != 0 {
			t.Errorf("plain HTTP on the TLS port got an answer")
		}
	}
	if got := srv.Accepted() - before; got != 0 {
		t.Errorf("%d connections reached the internal server for names nobody announced", got)
	}
	// And the announced name still works, through the same internal server.
	if code, _, err := get(c.HTTPClient(c.Ports.PublicTLS, false), chain.Domain); err != nil || code != 200 {
		t.Fatalf("announced name after the refusals: %d %v", code, err)
	}
	if srv.Accepted()-before != 1 {
		t.Errorf("the announced request reached the internal server %d times, want 1", srv.Accepted()-before)
	}
}

// Restarting either proxy loses no announcement. The public proxy's come back from its file:
// the private proxy re-announces only every 10 minutes. The private proxy's run-time
// announcement (added by another operator, not in its settings) comes back from its own file.
func TestRestartsLoseNoAnnouncement(t *testing.T) {
	c := newChain(t)
	startAll(t, c)
	if err := c.Start(chain.OtherEPS); err != nil {
		t.Fatal(err)
	}
	// other-operator.ga adds api.internal-server.local at run time.
	const api = "api.internal-server.local"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out string
	var err error
	for {
		out, err = c.Call(ctx, chain.OtherEPS, "private-proxy-1.ga.announceConnection", `{"domain": "`+api+`", "proxy": "public-proxy-1.ga"}`)
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("announceConnection: %v %s", err, out)
	}
	waitGet(t, c, api)

	for _, proxy := range []string{chain.Public, chain.Private} {
		if err := c.Stop(proxy, 15*time.Second); err != nil {
			t.Fatalf("stopping %s: %v", proxy, err)
		}
		if err := c.Start(proxy); err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{chain.Domain, api} {
			waitGet(t, c, host)
		}
	}
	// A stranger cannot add names: the public proxy's operator is not in the operators group.
	out, err = c.Call(ctx, chain.PublicEPS, "private-proxy-1.ga.announceConnection", `{"domain": "evil.internal-server.local", "proxy": "public-proxy-1.ga"}`)
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("public-proxy-1.ga adding a name: %v %s", err, out)
	}
}

// waitGet retries the GET for host until it succeeds (the restarted proxy needs a moment to
// listen), within a bound well below any re-announce interval.
func waitGet(t *testing.T, c *chain.Chain, host string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body, err := get(c.HTTPClient(c.Ports.PublicTLS, false), host)
		if err == nil && code == 200 && bytes.Contains([]byte(body), []byte("success")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET https://%s/jsonrpc: %d %q %v", host, code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/chain"
	"epsproxy/proxy/private"
)

// Helpers shared by the fault, hostile-input and limits tests.

// withAdmin turns on the admin listener of each named process (before Start), so the test can
// read /debug/stats.
func withAdmin(t *testing.T, c *chain.Chain, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := c.EnableAdmin(n); err != nil {
			t.Fatal(err)
		}
	}
}

// overlayRole adds a settings file to a role of the chain's copy; its name sorts after the port
// overlay, so it wins.
func overlayRole(t *testing.T, c *chain.Chain, role, body string) {
	t.Helper()
	if err := c.WriteOverlay("roles/"+role, "999_zz_test.yml", body); err != nil {
		t.Fatal(err)
	}
}

// adminStats reads a process's /debug/stats or fails the test.
func adminStats(t *testing.T, c *chain.Chain, name string) chain.Stats {
	t.Helper()
	st, err := c.Stats(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// settledStats is the baseline of a proxy with the default standby settings: once its standby
// sockets are all there (parked at the public proxy, waiting at the private one; the private
// proxy starts them after its first announcement went through, retrying with backoff), the
// first of two reads half a second apart that agree on goroutines and fds (connections from the
// warm-up finish their teardown meanwhile).
func settledStats(t *testing.T, c *chain.Chain, name string) chain.Stats {
	t.Helper()
	standby := map[string]string{chain.Public: "StandbyParked", chain.Private: "StandbyWaiting"}[name]
	for deadline := time.Now().Add(30 * time.Second); standby != ""; time.Sleep(50 * time.Millisecond) {
		st := adminStats(t, c, name)
		if st.Counters[standby] >= private.DefaultStandby {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s %d after 30 s, want %d", name, standby, st.Counters[standby], private.DefaultStandby)
		}
	}
	prev := adminStats(t, c, name)
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		cur := adminStats(t, c, name)
		if cur.Process.Goroutines == prev.Process.Goroutines && cur.Process.FDs == prev.Process.FDs {
			return cur
		}
		prev = cur
	}
	t.Logf("%s: goroutines and fds did not settle; baseline %+v", name, prev.Process)
	return prev
}

// waitBaseline polls a process's stats until its goroutines and fds are back at (or below) the
// baseline and the named counters are zero, for up to d. It fails the test otherwise, naming what
// stayed up. The relay's pooled pipes (two fds each, bounded, kept for reuse) are not counted.
func waitBaseline(t *testing.T, c *chain.Chain, name string, base chain.Stats, d time.Duration, zero ...string) {
	t.Helper()
	start := time.Now()
	var st chain.Stats
	for {
		st = adminStats(t, c, name)
		ok := st.Process.Goroutines <= base.Process.Goroutines &&
			st.Process.FDs-2*int(st.Counters["PipesOpen"]) <= base.Process.FDs-2*int(base.Counters["PipesOpen"])
		for _, k := range zero {
			ok = ok && st.Counters[k] == 0
		}
		if ok {
			t.Logf("%s back to baseline after %v: goroutines %d (baseline %d), fds %d (baseline %d)", name,
				time.Since(start).Round(time.Millisecond), st.Process.Goroutines, base.Process.Goroutines, st.Process.FDs, base.Process.FDs)
			return
		}
		if time.Since(start) > d {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var held []string
	for _, k := range zero {
		if st.Counters[k] != 0 {
			held = append(held, fmt.Sprintf("%s=%d", k, st.Counters[k]))
		}
	}
	t.Errorf("%s did not return to its baseline within %v: goroutines %d (baseline %d), fds %d with %d pipes (baseline %d with %d), %v",
		name, d, st.Process.Goroutines, base.Process.Goroutines, st.Process.FDs, st.Counters["PipesOpen"],
		base.Process.FDs, base.Counters["PipesOpen"], held)
}

// clientTLS is the TLS configuration of a client of the announced name.
func clientTLS(c *chain.Chain, host string) *tls.Config {
	return &tls.Config{RootCAs: c.Roots, ServerName: host}
}

// dialClient opens a TLS connection for host through the public proxy; the handshake must finish
// within d.
func dialClient(c *chain.Chain, host string, d time.Duration) (*tls.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: d}, "tcp", c.Ports.PublicTLS, clientTLS(c, host))
}

// handshakeFails dials a new client for the announced name and reports how long it took to be
// refused; err is nil when the handshake unexpectedly succeeded.
func handshakeFails(c *chain.Chain, d time.Duration) (time.Duration, error) {
	start := time.Now()
	conn, err := dialClient(c, chain.Domain, d)
	elapsed := time.Since(start)
	if err == nil {
		conn.Close()
		return elapsed, nil
	}
	return elapsed, err
}

// keepAlive is one TLS connection to the internal server through the chain, on which the test
// sends HTTP/1.1 requests itself, so it knows every request used the same connection.
type keepAlive struct {
	conn *tls.Conn
	br   *bufio.Reader
}

func openKeepAlive(t *testing.T, c *chain.Chain) *keepAlive {
	t.Helper()
	conn, err := dialClient(c, chain.Domain, 10*time.Second)
	if err != nil {
		t.Fatalf("keep-alive client: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &keepAlive{conn: conn, br: bufio.NewReader(conn)}
}

// do sends one request (GET without a body, POST with one) and reads the answer, within 10 s.
func (k *keepAlive) do(body string) (int, string, error) {
	method, rd := http.MethodGet, io.Reader(nil)
	if body != "" {
		method, rd = http.MethodPost, strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+chain.Domain+"/jsonrpc", rd)
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	_ = k.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer k.conn.SetDeadline(time.Time{})
	if err := req.Write(k.conn); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(k.br, req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.Close {
		return resp.StatusCode, string(b), errors.New("the server closed the keep-alive connection")
	}
	return resp.StatusCode, string(b), err
}

// mustGet is one GET on k that must answer 200 with the README's body.
func (k *keepAlive) mustGet(t *testing.T, when string) {
	t.Helper()
	code, body, err := k.do("")
	if err != nil || code != 200 || !strings.Contains(body, "success") {
		t.Fatalf("keep-alive GET %s: %d %q %v", when, code, body, err)
	}
}

// closedBy waits up to d for the peer to close conn; it returns the bytes received before the
// close, the time from since (when the test began to dial) to the close, and an error when the
// connection was still open after d.
func closedBy(conn net.Conn, since time.Time, d time.Duration) (int, time.Duration, error) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	n, err := io.Copy(io.Discard, conn)
	elapsed := time.Since(since)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return int(n), elapsed, fmt.Errorf("still open after %v", d)
	}
	return int(n), elapsed, nil
}

// storedDomains reads an announcements file of a data directory (both proxies write
// {"version": 1, "announcements": [{"domain": ...}, ...]}).
func storedDomains(t *testing.T, c *chain.Chain, dataDir string) []string {
	t.Helper()
	path := filepath.Join(c.Dir, "settings", "dev", "data", dataDir, "announcements.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("announcements file: %v", err)
	}
	var f struct {
		Version       int `json:"version"`
		Announcements []struct {
			Domain string `json:"domain"`
		} `json:"announcements"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		t.Fatalf("announcements file %s: version %d, %v\n%s", path, f.Version, err, b)
	}
	var out []string
	for _, a := range f.Announcements {
		out = append(out, a.Domain)
	}
	return out
}

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// proxy_protocol: a client's address, as the public proxy accepted it, reaches the internal
// server of a name set to v2, over real processes, on the standby path and on the dial-back
// path, across restarts of either proxy; a name without the setting gets no header. Clients
// connect from 127.0.0.2, so their address differs from every proxy's.

// plainDomain is announced beside chain.Domain, without proxy_protocol.
const plainDomain = "plain.internal-server.local"

// clientFrom makes requests through the public proxy from the loopback address ip, one
// connection each, and remembers the address and port the last one connected from.
type clientFrom struct {
	cl   *http.Client
	mu   sync.Mutex
	last string
}

func newClientFrom(c *chain.Chain, ip string) *clientFrom {
	f := &clientFrom{}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	f.cl = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: c.Roots},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, c.Ports.PublicTLS)
			if err == nil {
				f.mu.Lock()
				f.last = conn.LocalAddr().String()
				f.mu.Unlock()
			}
			return conn, err
		},
	}}
	return f
}

// get sends GET https://host/jsonrpc with the given headers, wants 200, and returns the
// client's address and port.
func (f *clientFrom) get(t *testing.T, host string, header http.Header) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://"+host+"/jsonrpc", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.cl.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", host, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", host, resp.StatusCode)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// requestLines returns the internal server's request log lines for host.
func requestLines(c *chain.Chain, host string) []string {
	var out []string
	for _, l := range strings.Split(c.Log(chain.Internal), "\n") {
		if strings.Contains(l, "msg=request") && strings.Contains(l, " host="+host+" ") {
			out = append(out, l)
		}
	}
	return out
}

// waitRequestLine waits until the internal server has logged a request for host that contains
// every fragment, and returns it.
func waitRequestLine(t *testing.T, c *chain.Chain, host string, fragments ...string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, l := range requestLines(c, host) {
			all := true
			for _, f := range fragments {
				all = all && strings.Contains(l, f)
			}
			if all {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the internal server logged no request for %s with %q; its requests:\n%s", host, fragments, strings.Join(requestLines(c, host), "\n"))
		}
	}
}

// ppPaths are the two ways a client reaches the private proxy: standby sockets (the private
// proxy's standby setting), and dial-backs alone.
var ppPaths = []struct {
	name    string
	standby int
}{{"standby sockets", 4}, {"dial-backs", -1}}

// ppChain is a chain whose internal server reads optional PROXY v2 headers and logs each
// request's client, whose private proxy announces chain.Domain with proxy_protocol v2 and
// plainDomain without, with standby sockets (standby > 0) or dial-backs only (-1).
func ppChain(t *testing.T, standby int) *chain.Chain {
	t.Helper()
	c := newChain(t)
	c.Args[chain.Internal] = []string{"-proxy-protocol", "optional"}
	withAdmin(t, c, chain.Public)
	overlayRole(t, c, "private-proxy-1", fmt.Sprintf(`private:
  standby: %d
  announce:
    - {domain: %q, proxy: "public-proxy-1.ga", proxy_protocol: v2}
    - {domain: %q, proxy: "public-proxy-1.ga"}
`, standby, chain.Domain, plainDomain))
	startAll(t, c)
	return c
}

func TestProxyProtocolReachesTheInternalServer(t *testing.T) {
	t.Parallel()
	for _, path := range ppPaths {
		t.Run(path.name, func(t *testing.T) {
			t.Parallel()
			c := ppChain(t, path.standby)
			from := newClientFrom(c, "127.0.0.2")
			// check sends one client of each name and checks what the internal server saw, and
			// that the client took the path under test.
			check := func(when string) {
				t.Helper()
				if path.standby > 0 {
					waitParked(t, c, int64(path.standby))
				}
				before := adminStats(t, c, chain.Public).Counters["StandbyPaired"]
				client := from.get(t, chain.Domain, nil)
				if !strings.HasPrefix(client, "127.0.0.2:") {
					t.Fatalf("the client connected from %s", client)
				}
				waitRequestLine(t, c, chain.Domain, " client="+client+" ", " destination="+c.Ports.PublicTLS+" ", " proxy_header=true")
				paired := adminStats(t, c, chain.Public).Counters["StandbyPaired"] - before
				if standby := path.standby > 0; (paired == 1) != standby {
					t.Errorf("%s: %d clients relayed to a standby socket, want the %s path", when, paired, path.name)
				}

				plainBefore := len(requestLines(c, plainDomain))
				from.get(t, plainDomain, nil)
				waitRequestLine(t, c, plainDomain, " proxy_header=false")
				for _, l := range requestLines(c, plainDomain)[plainBefore:] {
					if !strings.Contains(l, " proxy_header=false") || strings.Contains(l, "127.0.0.2") {
						t.Errorf("%s: a name without proxy_protocol reached the internal server with a header: %s", when, l)
					}
				}
			}
			check("at start")
			for _, victim := range []string{chain.Public, chain.Private} {
				if err := c.Stop(victim, 10*time.Second); err != nil {
					t.Fatal(err)
				}
				if err := c.Start(victim); err != nil {
					t.Fatal(err)
				}
				ready(t, c)
				check("after a restart of the " + victim)
			}
		})
	}
}

// With terminate_tls the same setting puts the client's address in X-Forwarded-For and
// Forwarded, replacing what the client sent; a name without it keeps today's headers (the
// public proxy's address in X-Forwarded-For, no Forwarded) and never sees the client's address.
func TestProxyProtocolWithTerminateTLS(t *testing.T) {
	t.Parallel()
	for _, path := range ppPaths {
		t.Run(path.name, func(t *testing.T) {
			t.Parallel()
			seen := make(chan http.Header, 16)
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := r.Header.Clone()
				h.Set("Host", r.Host)
				seen <- h
				_, _ = io.WriteString(w, `{"message": "success"}`)
			}))
			t.Cleanup(backend.Close)
			c := newChain(t)
			withAdmin(t, c, chain.Public)
			overlayRole(t, c, "private-proxy-1", fmt.Sprintf(`private:
  internal_endpoint: %q
  standby: %d
  terminate_tls: {cert_file: ../../certs/internal-server.crt, key_file: ../../certs/internal-server.key}
  announce:
    - {domain: %q, proxy: "public-proxy-1.ga", proxy_protocol: v2}
    - {domain: %q, proxy: "public-proxy-1.ga"}
`, backend.Listener.Addr().String(), path.standby, chain.Domain, plainDomain))
			for _, n := range chain.All[1:] { // no internal-server process: the backend is the test's
				if err := c.Start(n); err != nil {
					t.Fatal(err)
				}
			}
			ready(t, c)
			if path.standby > 0 {
				waitParked(t, c, int64(path.standby))
			}
			before := adminStats(t, c, chain.Public).Counters["StandbyPaired"]
			forged := http.Header{"X-Forwarded-For": {"6.6.6.6"}, "Forwarded": {"for=6.6.6.6;proto=http"}}
			from := newClientFrom(c, "127.0.0.2")
			next := func(host string) http.Header {
				t.Helper()
				for {
					select {
					case h := <-seen:
						if h.Get("Host") == host {
							return h
						}
					case <-time.After(10 * time.Second):
						t.Fatalf("the backend saw no request for %s", host)
					}
				}
			}
			for len(seen) > 0 {
				<-seen // the readiness checks' requests
			}
			from.get(t, chain.Domain, forged)
			h := next(chain.Domain)
			if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.2" {
				t.Errorf("X-Forwarded-For %q, want [127.0.0.2]", got)
			}
			if got := h.Values("Forwarded"); len(got) != 1 || got[0] != "for=127.0.0.2;proto=https" {
				t.Errorf("Forwarded %q, want [for=127.0.0.2;proto=https]", got)
			}
			if paired := adminStats(t, c, chain.Public).Counters["StandbyPaired"] - before; (paired == 1) != (path.standby > 0) {
				t.Errorf("%d clients relayed to a standby socket, want the %s path", paired, path.name)
			}
			from.get(t, plainDomain, forged)
			h = next(plainDomain)
			if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("a name without proxy_protocol: X-Forwarded-For %q, want the public proxy's address alone", got)
			}
			if got := h.Values("Forwarded"); len(got) != 0 {
				t.Errorf("a name without proxy_protocol: Forwarded %q, want none", got)
			}
		})
	}
}

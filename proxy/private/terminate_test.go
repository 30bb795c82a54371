package private

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/internal/config"
	"epsproxy/internal/testnet"
	"epsproxy/proxy"
)

// With terminate_tls, the dial-back socket carries the client's TLS to the private proxy, which
// answers it with its certificate and forwards each request as plain HTTP; several requests share
// one client connection.
func TestTerminateTLSForwardsPlainHTTPWithKeepAlive(t *testing.T) {
	var requests atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Connection", "close-me-not") // a hop-by-hop-looking header is fine to send back
		_, _ = io.WriteString(w, r.Method+" "+r.Host+" "+r.URL.Path+" "+string(body))
	}))
	defer internal.Close()

	term, roots := siteCert(t)
	s := Settings{InternalEndpoint: strings.TrimPrefix(internal.URL, "http://"), TerminateTLS: term}
	p := newProxy(t, s, t.TempDir())
	defer p.term.shutdown(t.Context())

	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var tok [32]byte
	tok[31] = 9
	go p.dialBack(dialJob{domain: "app.site.example", endpoint: pub.Addr().String(), target: s.InternalEndpoint, token: tok})
	raw, err := pub.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 32)
	if _, err := io.ReadFull(raw, got); err != nil || got[31] != 9 {
		t.Fatalf("token: %v %v", err, got)
	}
	// From here the socket is what the public proxy splices to the client.
	c := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "app.site.example"})
	br := bufio.NewReader(c)
	for i, body := range []string{"one", "two"} {
		req, _ := http.NewRequest(http.MethodPost, "https://app.site.example/jsonrpc", strings.NewReader(body))
		if err := req.Write(c); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "POST app.site.example /jsonrpc " + body; string(b) != want {
			t.Errorf("response %d: %q, want %q", i, b, want)
		}
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("internal server saw %d requests, want 2 over one client connection", n)
	}
}

// Terminated connections count against max_pairs, and one on which nothing moves for the idle
// timeout is closed, even halfway through a request body the server is waiting for.
func TestTerminatedConnectionsAreCappedAndTimedOut(t *testing.T) {
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	defer internal.Close()
	term, roots := siteCert(t)
	s := Settings{
		InternalEndpoint: strings.TrimPrefix(internal.URL, "http://"),
		TerminateTLS:     term,
		Relay:            proxy.RelaySettings{MaxPairs: 1, IdleTimeout: config.Duration(300 * time.Millisecond)},
	}
	p := newProxy(t, s, t.TempDir())
	defer p.term.shutdown(t.Context())

	// One connection: a request whose body stops halfway.
	a, b := tcpPair(t)
	if err := p.term.serve(b, s.InternalEndpoint, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	c := tls.Client(a, &tls.Config{RootCAs: roots, ServerName: "app.site.example"})
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: app.site.example\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	// The cap is one: a second connection is refused while the first is open.
	_, y := tcpPair(t)
	if err := p.term.serve(y, s.InternalEndpoint, netip.Addr{}); !errors.Is(err, errTerminatorFull) {
		t.Errorf("a second terminated connection with max_pairs 1: %v, want refused", err)
	}
	if n := p.Stats().Terminated; n != 1 {
		t.Errorf("Stats().Terminated = %d, want 1", n)
	}
	// The stalled one is closed by the idle timeout (long before the 10 s deadline above).
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("the stalled request got %d", resp.StatusCode)
		}
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the stalled connection was not closed: %v", err)
	}
	// Its place is free again.
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Terminated != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.term.serve(y, s.InternalEndpoint, netip.Addr{}); err != nil {
		t.Errorf("after the close: %v", err)
	}
}

// siteCert issues a certificate for *.site.example: the terminate_tls block that presents it,
// and the roots a client trusts it by.
func siteCert(t *testing.T) (*Terminate, *x509.CertPool) {
	t.Helper()
	pk := testnet.NewPKI(t)
	pk.Add(t, "site", "site.example", "*.site.example")
	return &Terminate{CertFile: config.Path(filepath.Join(pk.Dir, "site.crt")), KeyFile: config.Path(filepath.Join(pk.Dir, "site.key"))},
		pk.Identity(t, "site").Roots
}

// tcpPair is a connected pair of loopback TCP sockets: the client's end and the end a
// dial-back hands over. Both are closed when the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// A terminated connection whose name wants the client's address has its requests name it in
// X-Forwarded-For and Forwarded, replacing what the client sent; one that does not keeps
// today's headers: X-Forwarded-For names the connection's peer, and no Forwarded header goes.
func TestTerminatedRequestsNameTheClient(t *testing.T) {
	seen := make(chan http.Header, 4)
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		_, _ = io.WriteString(w, "ok")
	}))
	defer internal.Close()
	term, roots := siteCert(t)
	s := Settings{InternalEndpoint: strings.TrimPrefix(internal.URL, "http://"), TerminateTLS: term}
	p := newProxy(t, s, t.TempDir())
	defer p.term.shutdown(t.Context())
	for _, c := range []struct {
		client   netip.Addr
		xff, fwd string
	}{
		{netip.MustParseAddr("127.0.0.2"), "127.0.0.2", "for=127.0.0.2;proto=https"},
		{netip.MustParseAddr("2001:db8::7"), "2001:db8::7", `for="[2001:db8::7]";proto=https`},
		{netip.Addr{}, "127.0.0.1", ""},
	} {
		a, b := tcpPair(t)
		if err := p.term.serve(b, s.InternalEndpoint, c.client); err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(a, &tls.Config{RootCAs: roots, ServerName: "app.site.example"})
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		req, _ := http.NewRequest(http.MethodGet, "https://app.site.example/jsonrpc", nil)
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("Forwarded", "for=6.6.6.6")
		if err := req.Write(tc); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tc.Close() // so that the terminator's shutdown finds no open connection
		h := <-seen
		if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != c.xff {
			t.Errorf("client %v: X-Forwarded-For %q, want %q", c.client, got, c.xff)
		}
		if got := h.Get("Forwarded"); got != c.fwd || len(h.Values("Forwarded")) > 1 {
			t.Errorf("client %v: Forwarded %q, want %q", c.client, h.Values("Forwarded"), c.fwd)
		}
		if h.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("client %v: X-Forwarded-Proto %q", c.client, h.Get("X-Forwarded-Proto"))
		}
	}
}

package demoserver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"epsproxy/internal/testnet"
)

// v2Header is a PROXY protocol v2 header from src to dst; LOCAL if src is empty.
func v2Header(t *testing.T, src, dst string) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if src != "" {
		h = proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lockedBuffer is a log destination the server's goroutines and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startServer(t *testing.T, mode ProxyProtocol) (*Server, *lockedBuffer, *tls.Config) {
	t.Helper()
	pk := testnet.NewPKI(t)
	pk.Add(t, "site", "test.internal-server.local")
	logs := &lockedBuffer{}
	s, err := New("127.0.0.1:0", filepath.Join(pk.Dir, "site.crt"), filepath.Join(pk.Dir, "site.key"), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.SetProxyProtocol(mode)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(t.Context()) })
	return s, logs, &tls.Config{RootCAs: pk.Identity(t, "site").Roots, ServerName: "test.internal-server.local"}
}

// get sends head on a new connection, then GET /jsonrpc over TLS; it returns the status (0 when
// the exchange failed) and the connection's local address.
func get(t *testing.T, s *Server, tc *tls.Config, head []byte) (int, string) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Write(head); err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, tc)
	req, _ := http.NewRequest(http.MethodGet, "https://test.internal-server.local/jsonrpc", nil)
	if err := req.Write(c); err != nil {
		return 0, raw.LocalAddr().String()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return 0, raw.LocalAddr().String()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, raw.LocalAddr().String()
}

func TestProxyProtocolRequired(t *testing.T) {
	s, logs, tc := startServer(t, ProxyRequired)
	if code, _ := get(t, s, tc, v2Header(t, "127.0.0.2:40000", "127.0.0.1:4433")); code != 200 {
		t.Fatalf("with a header: status %d", code)
	}
	if want := "client=127.0.0.2:40000 destination=127.0.0.1:4433 proxy_header=true"; !strings.Contains(logs.String(), want) {
		t.Errorf("the request's log line does not say %q:\n%s", want, logs)
	}
	if code, _ := get(t, s, tc, nil); code != 0 {
		t.Errorf("without a header: status %d, want the connection closed", code)
	}
	if code, _ := get(t, s, tc, []byte("PROXY TCP4 127.0.0.9 127.0.0.1 1 2\r\n")); code != 0 {
		t.Errorf("with a version 1 header: status %d, want the connection closed", code)
	}
	if strings.Contains(logs.String(), "127.0.0.9") {
		t.Errorf("a version 1 header named the client:\n%s", logs)
	}
}

func TestProxyProtocolOptional(t *testing.T) {
	s, logs, tc := startServer(t, ProxyOptional)
	code, local := get(t, s, tc, nil)
	if code != 200 {
		t.Fatalf("without a header: status %d", code)
	}
	if want := "client=" + local + " proxy_header=false"; !strings.Contains(logs.String(), want) {
		t.Errorf("the request's log line does not say %q:\n%s", want, logs)
	}
	// LOCAL: the connection's own peer.
	code, local = get(t, s, tc, v2Header(t, "", ""))
	if want := "client=" + local + " proxy_header=false"; code != 200 || !strings.Contains(logs.String(), want) {
		t.Errorf("with a LOCAL header: status %d, log:\n%s", code, logs)
	}
}

// By default nothing changes: no header is read, and requests are not logged.
func TestProxyProtocolOff(t *testing.T) {
	s, logs, tc := startServer(t, ProxyOff)
	if code, _ := get(t, s, tc, nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	if strings.Contains(logs.String(), "msg=request") || strings.Contains(logs.String(), "proxy_protocol") {
		t.Errorf("the default server logs more than it did:\n%s", logs)
	}
	if code, _ := get(t, s, tc, v2Header(t, "127.0.0.2:1", "127.0.0.1:2")); code != 0 {
		t.Errorf("a header to a server that does not expect one: status %d, want a failed handshake", code)
	}
	if _, err := ParseProxyProtocol("v1"); err == nil {
		t.Error("ParseProxyProtocol(v1) accepted")
	}
	for m, n := range ProxyProtocolNames {
		if got, err := ParseProxyProtocol(n); err != nil || got != m {
			t.Errorf("ParseProxyProtocol(%q) = %v, %v", n, got, err)
		}
	}
}

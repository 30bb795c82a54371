package private

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/internal/config"
	"epsproxy/internal/testnet"
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

	pk := testnet.NewPKI(t)
	pk.Add(t, "site", "site.example", "*.site.example")
	s := Settings{
		InternalEndpoint: strings.TrimPrefix(internal.URL, "http://"),
		TerminateTLS: &Terminate{
			CertFile: config.Path(filepath.Join(pk.Dir, "site.crt")),
			KeyFile:  config.Path(filepath.Join(pk.Dir, "site.key")),
		},
	}
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
	c := tls.Client(raw, &tls.Config{RootCAs: pk.Identity(t, "site").Roots, ServerName: "app.site.example"})
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

package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"epsproxy/bench/backend"
	"epsproxy/internal/pki"
)

const testName = "test.internal-server.local"

// testPKI issues a root and a certificate for *.internal-server.local, like the dev PKI.
func testPKI(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca, err := pki.NewCA("Bench Test Root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := ca.Issue("internal-server.local", []string{"*.internal-server.local"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, ca.Pool()
}

// connCounts counts a test server's connections: all accepted, and open now.
type connCounts struct{ total, open atomic.Int64 }

// demoServer answers GET /jsonrpc like the demo internal server, over TLS on 127.0.0.1.
func demoServer(t *testing.T, cert tls.Certificate) (*httptest.Server, *connCounts) {
	t.Helper()
	var n connCounts
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jsonrpc" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "{\"message\": \"success\"}\n")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			n.total.Add(1)
			n.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			n.open.Add(-1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &n
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	s := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, c := range []struct {
		p    float64
		want int
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {10, 1}, {0, 1}, {11, 2}, {150, 10}} {
		if got := Percentile(s, c.p); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("Percentile(1..10 ms, %v) = %v, want %d ms", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("Percentile of no samples is not 0")
	}
	l := Summarize(ms(30, 10, 20))
	if l.N != 3 || l.P50 != 20*time.Millisecond || l.Max != 30*time.Millisecond || l.Mean != 20*time.Millisecond {
		t.Errorf("Summarize(30,10,20 ms) = %+v", l)
	}
	if (Summarize(nil) != Latency{}) {
		t.Error("Summarize(nil) is not zero")
	}
}

func TestReadResponse(t *testing.T) {
	buf := make([]byte, BufSize)
	good := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 23\r\n\r\n{\"message\": \"success\"}\n"
	// One byte per Read: the header end and the body are found across reads.
	r := strings.NewReader(good + "NEXT")
	if st, err := ReadResponse(iotest.OneByteReader(r), buf); err != nil || st != 200 {
		t.Fatalf("byte-by-byte response: %d, %v", st, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "NEXT" {
		t.Fatalf("read past the body: %q left", rest)
	}
	// No Content-Length: the body runs to EOF.
	if st, err := ReadResponse(strings.NewReader("HTTP/1.0 404 Not Found\r\n\r\nnothing here"), buf); err != nil || st != 404 {
		t.Fatalf("body to EOF: %d, %v", st, err)
	}
	for name, in := range map[string]string{
		"chunked":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"bad status line": "HTTX/1.1 200 OK\r\n\r\n",
		"bad code":        "HTTP/1.1 2x0 OK\r\n\r\n",
		"bad length":      "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
		"huge length":     "HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
		"short body":      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"no header end":   "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
		"headers too big": "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", MaxHeader) + "\r\n\r\n",
		"header no colon": "HTTP/1.1 200 OK\r\nbroken\r\n\r\n",
		"empty":           "",
	} {
		if _, err := ReadResponse(strings.NewReader(in), buf); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ReadResponse(strings.NewReader(good), make([]byte, 10)); err == nil {
		t.Error("small buffer: no error")
	}
}

func TestRunConnsAgainstTLSServer(t *testing.T) {
	cert, roots := testPKI(t)
	srv, conns := demoServer(t, cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: testName}
	res, err := RunConns(ctxFor(t), ConnsConfig{
		Addr: srv.Listener.Addr().String(), TLS: cfg, Request: Request(testName, "/jsonrpc", true),
		Concurrency: 4, Duration: 300 * time.Millisecond, MaxConns: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK == 0 || res.Errors != 0 {
		t.Fatalf("OK %d, errors %d (%s)", res.OK, res.Errors, res.FirstError)
	}
	if res.OK > 200 {
		t.Fatalf("OK %d beyond MaxConns 200", res.OK)
	}
	// One TCP connection per request: no keep-alive, no reuse.
	if got := conns.total.Load(); got != int64(res.OK) {
		t.Fatalf("server saw %d connections for %d requests", got, res.OK)
	}
	if l := res.Latency(); l.N != res.OK || l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 {
		t.Fatalf("latency summary %+v for %d connections", l, res.OK)
	}
	if res.Rate() <= 0 {
		t.Fatalf("rate %v", res.Rate())
	}
}

func TestRunConnsCountsFailures(t *testing.T) {
	cert, roots := testPKI(t)
	srv, _ := demoServer(t, cert)
	// The certificate is for *.internal-server.local: another name must fail verification.
	cfg := &tls.Config{RootCAs: roots, ServerName: "other.example"}
	res, err := RunConns(ctxFor(t), ConnsConfig{
		Addr: srv.Listener.Addr().String(), TLS: cfg, Request: Request("other.example", "/jsonrpc", true),
		Concurrency: 2, Duration: 100 * time.Millisecond, MaxConns: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Errors == 0 || !strings.Contains(res.FirstError, "certificate") {
		t.Fatalf("wrong name: OK %d, errors %d, first %q", res.OK, res.Errors, res.FirstError)
	}
	// A 404 is a failure too.
	cfg = &tls.Config{RootCAs: roots, ServerName: testName}
	res, _ = RunConns(ctxFor(t), ConnsConfig{
		Addr: srv.Listener.Addr().String(), TLS: cfg, Request: Request(testName, "/nope", true),
		Concurrency: 1, Duration: 50 * time.Millisecond, MaxConns: 5,
	})
	if res.OK != 0 || !strings.Contains(res.FirstError, "404") {
		t.Fatalf("404: OK %d, first %q", res.OK, res.FirstError)
	}
}

func TestRunConnsRejectsBadConfig(t *testing.T) {
	cfg := &tls.Config{ServerName: testName}
	base := ConnsConfig{Addr: "127.0.0.1:1", TLS: cfg, Request: []byte("GET"), Concurrency: 1, Duration: time.Millisecond}
	bad := []ConnsConfig{base, base, base, base, base}
	bad[0].TLS = nil
	bad[1].Concurrency = 0
	bad[2].Concurrency = MaxConcurrency + 1
	bad[3].Duration = 0
	bad[4].TLS = &tls.Config{ServerName: testName, ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	for i, c := range bad {
		if _, err := RunConns(context.Background(), c); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}

func TestHoldRejectsBadConfig(t *testing.T) {
	cfg := &tls.Config{ServerName: testName}
	base := HoldConfig{Addr: "127.0.0.1:1", TLS: cfg, Request: []byte("GET"), Conns: 1, Concurrency: 1}
	bad := []HoldConfig{base, base, base, base, base}
	bad[0].Conns = 0
	bad[1].Conns = MaxHeld + 1
	bad[2].Concurrency = 0
	bad[3].Rate = -1
	bad[4].Rate = MaxRate + 1
	for i, c := range bad {
		if h, err := Hold(context.Background(), c); err == nil {
			h.Close()
			t.Errorf("bad config %d accepted", i)
		}
	}
}

func TestClientHelloRecord(t *testing.T) {
	rec, err := ClientHelloRecord(&tls.Config{ServerName: "raw.internal-server.local"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := backend.ReadRecord(bytes.NewReader(rec), make([]byte, backend.MaxRecord))
	if err != nil || !bytes.Equal(got, rec) {
		t.Fatalf("the backend does not read the record back: %v", err)
	}
	if rec[5] != 1 { // handshake type client_hello
		t.Fatalf("handshake type %d, want 1 (client_hello)", rec[5])
	}
	if !bytes.Contains(rec, []byte("raw.internal-server.local")) {
		t.Fatal("the record does not carry the server name")
	}
	if _, err := ClientHelloRecord(&tls.Config{}); err == nil {
		t.Fatal("no ServerName: no error")
	}
}

func TestBulkRawAndTLS(t *testing.T) {
	cert, roots := testPKI(t)
	rawSrv, err := backend.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rawSrv.Close()
	tlsSrv, err := backend.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer tlsSrv.Close()
	hello, err := ClientHelloRecord(&tls.Config{ServerName: "raw.internal-server.local"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		srv  *backend.Server
		cfg  BulkConfig
	}{
		{"raw", rawSrv, BulkConfig{Addr: rawSrv.Addr(), Hello: hello}},
		{"tls", tlsSrv, BulkConfig{Addr: tlsSrv.Addr(), TLS: &tls.Config{RootCAs: roots, ServerName: "bulk.internal-server.local"}}},
	} {
		for _, upload := range []bool{true, false} {
			cfg := c.cfg
			cfg.Streams, cfg.Upload = 3, upload
			recv0, sent0 := c.srv.Received(), c.srv.Sent()
			b, err := StartBulk(ctxFor(t), cfg)
			if err != nil {
				t.Fatalf("%s upload=%v: %v", c.name, upload, err)
			}
			// Wait for bytes to arrive at the receiving end, bounded.
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) && (upload && c.srv.Received()-recv0 < 1<<20 || !upload && b.Received() < 1<<20) {
				time.Sleep(5 * time.Millisecond)
			}
			if err := b.Stop(); err != nil {
				t.Fatalf("%s upload=%v: stream error %v", c.name, upload, err)
			}
			if upload {
				if got := c.srv.Received() - recv0; got < 1<<20 || b.Sent() < got {
					t.Fatalf("%s upload: server received %d, client sent %d", c.name, got, b.Sent())
				}
			} else {
				got := b.Received()
				// The server counts a write when it returns, which can be after the client read it.
				for deadline := time.Now().Add(5 * time.Second); c.srv.Sent()-sent0 < got && time.Now().Before(deadline); {
					time.Sleep(2 * time.Millisecond)
				}
				if got < 1<<20 || c.srv.Sent()-sent0 < got {
					t.Fatalf("%s download: client received %d, server sent %d", c.name, got, c.srv.Sent()-sent0)
				}
			}
		}
	}
	if _, err := StartBulk(ctxFor(t), BulkConfig{Addr: rawSrv.Addr(), Streams: 1}); err == nil {
		t.Fatal("raw streams without a hello record: no error")
	}
	if _, err := StartBulk(ctxFor(t), BulkConfig{Addr: rawSrv.Addr(), Hello: hello, Streams: MaxStreams + 1}); err == nil {
		t.Fatal("too many streams: no error")
	}
}

func TestHoldKeepsConnectionsOpen(t *testing.T) {
	cert, roots := testPKI(t)
	srv, conns := demoServer(t, cert)
	active := &conns.open
	h, err := Hold(ctxFor(t), HoldConfig{
		Addr: srv.Listener.Addr().String(), TLS: &tls.Config{RootCAs: roots, ServerName: testName},
		Request: Request(testName, "/jsonrpc", false), Conns: 30, Concurrency: 5, Rate: 2000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Len() != 30 || h.Failed != 0 {
		t.Fatalf("held %d, failed %d (%s)", h.Len(), h.Failed, h.First)
	}
	if got := active.Load(); got != 30 {
		t.Fatalf("server has %d open connections, want 30", got)
	}
	h.Close()
	deadline := time.Now().Add(5 * time.Second)
	for active.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := active.Load(); got != 0 {
		t.Fatalf("after Close the server still has %d connections", got)
	}
}

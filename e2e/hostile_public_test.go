package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// helloTimeout is the public proxy's hello_timeout in the hostile-input tests (5 s in the dev
// settings; shortened so the tests wait less).
const helloTimeout = 3 * time.Second

// clientHello returns the first flight a real crypto/tls client sends for host: one TLS record
// holding its ClientHello.
func clientHello(t *testing.T, host string) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		_ = tls.Client(a, &tls.Config{ServerName: host, InsecureSkipVerify: true}).Handshake()
	}()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	head := make([]byte, 5)
	if _, err := io.ReadFull(b, head); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(head[3])<<8|int(head[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(head, body...)
}

// junkInput is one hostile connection: what it sends, how (all at once or dripped), and whether
// the proxy must wait for hello_timeout to close it (true) or close it at once (false).
type junkInput struct {
	name    string
	data    []byte
	drip    time.Duration // >0: one byte per drip
	timeout bool
}

func junkCases(t *testing.T) []junkInput {
	random := make([]byte, 1024)
	_, _ = rand.Read(random)
	random[0] = 0x17 // not a handshake record, not SSLv2: plain garbage
	// An SSLv2-compatible ClientHello: 2-byte header with the high bit set, msg type 1, version
	// 3.1, three cipher specs, no session id, a 16-byte challenge.
	sslv2 := []byte{0x80, 0x22, 0x01, 0x03, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, 0x10,
		0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a}
	sslv2 = append(sslv2, make([]byte, 16)...)
	// A handshake record whose ClientHello claims 64 KiB, far over the 16 KiB cap.
	oversized := append([]byte{0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x00, 0x00}, make([]byte, 16384-4)...)
	return []junkInput{
		{name: "random bytes", data: random},
		{name: "plain HTTP", data: []byte("GET /jsonrpc HTTP/1.1\r\nHost: " + chain.Domain + "\r\n\r\n")},
		{name: "SSLv2 hello", data: sslv2},
		{name: "oversized hello", data: oversized},
		{name: "hello at 1 byte/s", data: clientHello(t, chain.Domain), drip: time.Second, timeout: true},
		{name: "silence", timeout: true},
	}
}

// send writes j on conn (dripping if asked) until done is closed or a write fails.
func (j junkInput) send(conn net.Conn, done <-chan struct{}) {
	if j.drip == 0 {
		_, _ = conn.Write(j.data)
		return
	}
	for _, b := range j.data {
		if _, err := conn.Write([]byte{b}); err != nil {
			return
		}
		select {
		case <-done:
			return
		case <-time.After(j.drip):
		}
	}
}

// Each kind of bad input on the public TLS port is refused on its own connection, the public
// proxy sends nothing back, and a good client is served meanwhile.
func TestBadInputOnThePublicPort(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	withAdmin(t, c, chain.Public)
	overlayRole(t, c, "public-proxy-1", fmt.Sprintf("public: {hello_timeout: %s}\n", helloTimeout))
	startAll(t, c)
	before := adminStats(t, c, chain.Public)

	stopGood := make(chan struct{})
	goodDone := make(chan [2]int)
	go func() { goodDone <- goodClient(c, stopGood) }()

	cases := junkCases(t)
	var wg sync.WaitGroup
	for _, j := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialed := time.Now()
			conn, err := net.DialTimeout("tcp", c.Ports.PublicTLS, 5*time.Second)
			if err != nil {
				t.Errorf("%s: %v", j.name, err)
				return
			}
			defer conn.Close()
			done := make(chan struct{})
			defer close(done)
			go j.send(conn, done)
			n, elapsed, err := closedBy(conn, dialed, helloTimeout+5*time.Second)
			t.Logf("%s: closed by the proxy after %v, %d bytes received", j.name, elapsed.Round(time.Millisecond), n)
			switch {
			case err != nil:
				t.Errorf("%s: %v", j.name, err)
			case n != 0:
				t.Errorf("%s: the proxy sent %d bytes back; want a silent close", j.name, n)
			case !j.timeout && elapsed >= helloTimeout:
				t.Errorf("%s: closed after %v, not at once (hello_timeout is %v)", j.name, elapsed, helloTimeout)
			case j.timeout && elapsed < helloTimeout-200*time.Millisecond:
				t.Errorf("%s: closed after %v, before hello_timeout %v", j.name, elapsed, helloTimeout)
			}
		}()
	}
	wg.Wait()
	close(stopGood)
	good := <-goodDone
	t.Logf("good client meanwhile: %d requests, %d failed", good[0], good[1])
	if good[0] == 0 || good[1] != 0 {
		t.Errorf("the good client was not served alongside the bad input: %d requests, %d failed", good[0], good[1])
	}
	after := adminStats(t, c, chain.Public)
	if d := after.Counters["Refused"] - before.Counters["Refused"]; d != int64(len(cases)) {
		t.Errorf("Refused counter rose by %d, want %d (one per bad connection)", d, len(cases))
	}
	if d := after.Counters["HelloTimeouts"] - before.Counters["HelloTimeouts"]; d != 2 {
		t.Errorf("HelloTimeouts counter rose by %d, want 2 (the dripped hello and the silent connection)", d)
	}
}

// goodClient sends GETs through the chain, one connection each, until stop; it returns how many
// it sent and how many failed.
func goodClient(c *chain.Chain, stop <-chan struct{}) [2]int {
	cl := c.HTTPClient(c.Ports.PublicTLS, false)
	var n, failed int
	for {
		select {
		case <-stop:
			return [2]int{n, failed}
		default:
		}
		n++
		if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
			failed++
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two thousand junk connections at once, from four source addresses, while good requests still
// succeed; every junk connection is closed by the proxy and its descriptors come back.
func TestJunkFloodOnThePublicPort(t *testing.T) {
	t.Parallel()
	const total = 2000
	const sources = 4 // 500 each: under the dev per-source limit of 2,000 new connections per second
	c := newChain(t)
	withAdmin(t, c, chain.Public)
	overlayRole(t, c, "public-proxy-1", fmt.Sprintf("public: {hello_timeout: %s}\n", helloTimeout))
	startAll(t, c)
	cl := c.HTTPClient(c.Ports.PublicTLS, false)
	for range 3 {
		if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
			t.Fatalf("warm-up GET: %d %v", code, err)
		}
	}
	base := settledStats(t, c, chain.Public)

	random := make([]byte, 512)
	_, _ = rand.Read(random)
	random[0] = 0x17
	kinds := [][]byte{
		{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, // a hello that never finishes
		random,
		nil, // silence
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	}
	var (
		opened, dialErrs, stillOpen, answered atomic.Int64
		wg                                    sync.WaitGroup
		allOpen                               sync.WaitGroup
	)
	sem := make(chan struct{}, 200) // dials in flight
	release := make(chan struct{})  // junk connections hold until all are open
	allOpen.Add(total)
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sources))}}
			conn, err := d.Dial("tcp", c.Ports.PublicTLS)
			<-sem
			if err != nil {
				dialErrs.Add(1)
				allOpen.Done()
				return
			}
			defer conn.Close()
			opened.Add(1)
			if k := kinds[i%len(kinds)]; k != nil {
				_, _ = conn.Write(k)
			}
			allOpen.Done()
			<-release
			n, _, err := closedBy(conn, time.Now(), helloTimeout+15*time.Second)
			if err != nil {
				stillOpen.Add(1)
			}
			if n > 0 {
				answered.Add(1)
			}
		}()
	}
	allOpen.Wait()
	peak := adminStats(t, c, chain.Public)
	// Good requests while the junk is open.
	failed := 0
	var firstErr error
	for range 10 {
		if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("HTTP %d: %v", code, err)
			}
		}
	}
	close(release)
	wg.Wait()
	t.Logf("%d junk connections opened (%d dial errors); public proxy during the flood: HelloConns %d, fds %d, goroutines %d; 10 good GETs, %d failed",
		opened.Load(), dialErrs.Load(), peak.Counters["HelloConns"], peak.Process.FDs, peak.Process.Goroutines, failed)
	if failed > 0 {
		t.Errorf("%d of 10 good requests failed during the flood; first: %v", failed, firstErr)
	}
	if dialErrs.Load() != 0 {
		t.Errorf("%d junk connections could not even connect", dialErrs.Load())
	}
	if n := stillOpen.Load(); n != 0 {
		t.Errorf("%d junk connections were still open %v after the flood", n, helloTimeout+15*time.Second)
	}
	if n := answered.Load(); n != 0 {
		t.Errorf("the proxy sent bytes to %d junk connections; want silent closes", n)
	}
	waitBaseline(t, c, chain.Public, base, 10*time.Second, "HelloConns", "Pending", "Pairs")
	if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
		t.Errorf("GET after the flood: %d %v", code, err)
	}
}

package engine_test

import (
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/proxy/wire"
)

// Benchmarks report; they never fail on a figure.

// BenchmarkTLSConnection is one new TLS client through the whole path (hello, notice, dial-back,
// handoff, handshake with the backend) plus one small echo. The client's and the backend's
// handshakes run in this process too, so most of the time is theirs.
func BenchmarkTLSConnection(b *testing.B) {
	r := newRig(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := goodClient(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHelloToNotice is the engine's own share of a connection: accept, read and route a
// captured ClientHello, file the token and notify; then Cancel closes the client.
func BenchmarkHelloToNotice(b *testing.B) {
	r := newRig(b, func(c *engine.Config) { c.AcceptTimeout = longPhase })
	r.holdNotices()
	hello := captureHello(b, r.clientTC)
	buf := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.DialTimeout("tcp", r.cfg.PublicAddr, patience)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(hello); err != nil {
			b.Fatal(err)
		}
		r.eng.Cancel(r.nextNotice(b).Token, "benchmark")
		_ = c.SetReadDeadline(time.Now().Add(patience))
		if _, err := c.Read(buf); err != io.EOF {
			b.Fatalf("want EOF after Cancel, got %v", err)
		}
		c.Close()
	}
}

// BenchmarkBulk streams client -> engine's relay -> private side's relay -> backend over one
// pair; bytes/s is the figure.
func BenchmarkBulk(b *testing.B) {
	r := newRig(b, nil)
	hello := captureHello(b, r.clientTC)
	drained := make(chan int64, 1)
	r.setBackend(func(c net.Conn) {
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		drained <- n
	})
	c, err := net.DialTimeout("tcp", r.cfg.PublicAddr, patience)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(hello); err != nil {
		b.Fatal(err)
	}
	// Wait for the pair so that the stream is not early data the engine would cut off.
	waitFor(b, "the pair", func() bool { return r.eng.Stats().Paired.Load() == 1 })
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	select {
	case n := <-drained:
		if want := int64(len(hello)) + int64(b.N)*int64(len(chunk)); n != want {
			b.Fatalf("backend got %d bytes, want %d", n, want)
		}
	case <-time.After(time.Minute):
		b.Fatal("backend did not drain")
	}
}

// BenchmarkHashToken is what a standby dial pays, once, for the table knowing its tokens by hash.
func BenchmarkHashToken(b *testing.B) {
	var tok wire.Token
	_, _ = rand.Read(tok[:])
	var sink wire.TokenHash
	b.ReportAllocs()
	for b.Loop() {
		sink = engine.HashToken(tok)
		tok[0] = sink[0]
	}
}

package engine_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/engine"
)

// FuzzAcceptPath drives the whole public accept path, not just the parser: each input is sent
// on a real connection to a running engine (gnet loop, parser, matcher, token table, handoff
// and relay to a TLS backend), then the client half-closes. Whatever the bytes, the engine must
// close that connection promptly and keep serving others. Run it with `make fuzz`; the seed
// corpus (real hellos, including ones for the announced name) runs in every `go test`.
func FuzzAcceptPath(f *testing.F) {
	golden, _ := filepath.Glob(filepath.Join("hello", "testdata", "*.bin"))
	for _, g := range golden {
		if b, err := os.ReadFile(g); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: test.example.internal\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x00})
	f.Add([]byte{0x80, 0x2e, 0x01, 0x03, 0x01})
	f.Add(captureHello(f, &tls.Config{ServerName: domain, InsecureSkipVerify: true}))

	r := newRig(f, func(c *engine.Config) { c.HelloTimeout = time.Second })
	var runs atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", r.cfg.PublicAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("the engine stopped accepting: %v", err)
		}
		defer c.Close()
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
		if res := awaitClose(c, time.Now(), 10*time.Second); !res.closed {
			t.Fatalf("%d input bytes: connection still open 10 s after the client finished: %v", len(data), res)
		}
		// Now and then, a real client must still get through.
		if runs.Add(1)%64 == 1 {
			tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.cfg.PublicAddr, r.clientTC)
			if err != nil {
				t.Fatalf("a good client failed after fuzz input: %v", err)
			}
			tc.Close()
		}
	})
}

package engine_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"epsproxy/engine"
)

// A client the engine cannot route is closed at once, without a byte, and nobody else notices:
// an established session keeps working and a new client connecting at the same moment is served.

type refusal struct {
	name    string
	payload func(t testing.TB, r *rig) []byte
	noRoute bool // a complete hello for a name nobody announced
}

func TestRefusalsCloseOnlyThatConnection(t *testing.T) {
	cases := []refusal{
		{name: "random bytes", payload: func(testing.TB, *rig) []byte {
			b := make([]byte, 512)
			_, _ = rand.NewChaCha8([32]byte{1}).Read(b)
			return b
		}},
		{name: "HTTP request", payload: func(testing.TB, *rig) []byte {
			return []byte("GET / HTTP/1.1\r\nHost: " + domain + "\r\n\r\n")
		}},
		{name: "SSLv2 hello", payload: func(testing.TB, *rig) []byte { return sslv2Hello() }},
		{name: "TLS alert record", payload: func(testing.TB, *rig) []byte {
			return []byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28}
		}},
		{name: "hello without SNI", payload: func(t testing.TB, r *rig) []byte {
			cfg := r.clientTC.Clone()
			cfg.ServerName = ""
			cfg.InsecureSkipVerify = true
			return captureHello(t, cfg)
		}},
		{name: "SNI that is no host name", payload: func(t testing.TB, r *rig) []byte {
			return helloFor(t, r, "bad!name.example.internal")
		}},
		{name: "SNI nobody announced", noRoute: true, payload: func(t testing.TB, r *rig) []byte {
			return helloFor(t, r, "nobody.example.org")
		}},
		{name: "unannounced sibling of an announced name", noRoute: true, payload: func(t testing.TB, r *rig) []byte {
			return helloFor(t, r, "other.example.internal")
		}},
		{name: "hello over the 16 KiB cap", payload: func(t testing.TB, r *rig) []byte {
			cfg := r.clientTC.Clone()
			cfg.NextProtos = alpnForSize(t, cfg, 16385)
			return captureHello(t, cfg)
		}},
		{name: "hello in more records than the cap", payload: func(t testing.TB, r *rig) []byte {
			out, err := reframe(captureHello(t, r.clientTC), evenCut(300))
			if err != nil {
				t.Fatal(err)
			}
			return out
		}},
		{name: "record carrying bytes past the hello", payload: func(t testing.TB, r *rig) []byte {
			h := captureHello(t, r.clientTC)
			n := (int(h[3])<<8 | int(h[4])) + 1
			h[3], h[4] = byte(n>>8), byte(n)
			return append(h, 0)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(c *engine.Config) { c.HelloTimeout = longPhase })
			payload := tc.payload(t, r)
			established, err := dialTLS(r.cfg.PublicAddr, r.clientTC, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer established.Close()

			good := goodClientAsync(r)
			bad := dial(t, r.cfg.PublicAddr)
			// The engine may close before it read everything; what counts is how it closes.
			_, _ = bad.Write(payload)
			refusedAtOnce(t, bad, tc.name)
			wait(t, good, "client connecting during the refusal")
			if err := echo(established, []byte("still here")); err != nil {
				t.Errorf("established session after the refusal: %v", err)
			}
			if n := r.accepts.Load(); n != 2 {
				t.Errorf("backend accepted %d connections, want 2 (the good clients only)", n)
			}
			want := map[string]int64{"Accepted": 3, "Matched": 2, "Paired": 2, "Refused": 1}
			if tc.noRoute {
				want["NoRoute"] = 1
			}
			wantStats(t, r.eng, want)
			wantIdle(t, r)
		})
	}
}

// helloFor is a crypto/tls ClientHello for name.
func helloFor(t testing.TB, r *rig, name string) []byte {
	t.Helper()
	cfg := r.clientTC.Clone()
	cfg.ServerName = name
	h := captureHello(t, cfg)
	if !bytes.Contains(h, []byte(name)) {
		t.Fatalf("crypto/tls did not put %q in the hello", name)
	}
	return h
}

// sslv2Hello is an SSLv2-compatible ClientHello (RFC 5246 appendix E.2): it has no extensions,
// so no SNI.
func sslv2Hello() []byte {
	specs := []byte{0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a}
	challenge := bytes.Repeat([]byte{0xab}, 16)
	body := []byte{0x01, 0x03, 0x01, 0x00, byte(len(specs)), 0x00, 0x00, 0x00, byte(len(challenge))}
	body = append(append(body, specs...), challenge...)
	return append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...)
}

// A client that does not finish its hello is closed at the hello deadline, not before, and not
// much after; others are served meanwhile.
func TestHelloDeadline(t *testing.T) {
	const helloTimeout = 300 * time.Millisecond
	cases := []struct {
		name string
		talk func(c net.Conn, hello []byte, stop <-chan struct{})
	}{
		{"silence", func(net.Conn, []byte, <-chan struct{}) {}},
		{"truncated record then silence", func(c net.Conn, hello []byte, _ <-chan struct{}) {
			_, _ = c.Write(hello[:100])
		}},
		{"slowloris, a byte every 100 ms", func(c net.Conn, hello []byte, stop <-chan struct{}) {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < len(hello)-1; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := c.Write(hello[i : i+1]); err != nil {
					return
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(c *engine.Config) { c.HelloTimeout = helloTimeout })
			hello := captureHello(t, r.clientTC)
			start := time.Now()
			slow := dial(t, r.cfg.PublicAddr)
			stop := make(chan struct{})
			talked := make(chan struct{})
			go func() {
				defer close(talked)
				tc.talk(slow, hello, stop)
			}()
			wait(t, goodClientAsync(r), "client served while another dawdles")
			res := awaitClose(slow, start, 5*time.Second)
			close(stop)
			<-talked
			if !res.closed || res.got != 0 {
				t.Fatalf("want a close without a byte within 5 s, got %v", res)
			}
			if res.elapsed < helloTimeout {
				t.Errorf("closed after %v, before the %v hello deadline", res.elapsed, helloTimeout)
			}
			wantStats(t, r.eng, map[string]int64{"Accepted": 2, "Matched": 1, "Paired": 1, "Refused": 1, "HelloTimeouts": 1})
			wantIdle(t, r)
		})
	}
}

// A notifier that cannot take the notice closes the client at once.
func TestNotifierErrorClosesTheClient(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *engine.Config) { c.AcceptTimeout = longPhase })
	r.mu.Lock()
	r.notifyErr = errQueueFull
	r.mu.Unlock()
	c := dial(t, r.cfg.PublicAddr)
	if _, err := c.Write(captureHello(t, r.clientTC)); err != nil {
		t.Fatal(err)
	}
	refusedAtOnce(t, c, "client whose notice failed")
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "NotifyFailed": 1})
	if n := r.eng.Pending(); n != 0 {
		t.Errorf("Pending = %d, want 0", n)
	}
}

var errQueueFull = errors.New("signaling queue full")

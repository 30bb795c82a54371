package engine_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/engine"
)

// Every shape a ClientHello can take on the wire must reach the backend byte for byte and leave
// a working TLS session: the engine buffers, parses and replays, and must never re-frame.

type helloShape struct {
	name string
	// alpn returns the client's ALPN protocols (nil: none).
	alpn func(t testing.TB, r *rig) []string
	// shape reshapes the client's first write; gap spaces its pieces.
	shape func(t testing.TB) func([]byte) [][]byte
	gap   time.Duration
	// minHello is a floor on the hello's size, so the case tests what its name says.
	minHello int
	// mlkem: the hello must carry an X25519MLKEM768 key share, as Go's default does.
	mlkem bool
}

// mlkemShare starts an X25519MLKEM768 key share entry: group 0x11ec, 1216 bytes.
var mlkemShare = []byte{0x11, 0xec, 0x04, 0xc0}

func reframed(cut func(int) []int) func(t testing.TB) func([]byte) [][]byte {
	return func(t testing.TB) func([]byte) [][]byte {
		return func(p []byte) [][]byte {
			out, err := reframe(p, cut)
			if err != nil {
				t.Errorf("re-framing the first write: %v", err)
				return [][]byte{p}
			}
			return [][]byte{out}
		}
	}
}

func TestHelloShapesReachTheBackendByteExact(t *testing.T) {
	shapes := []helloShape{
		{name: "default hello in one write", minHello: 1200, mlkem: true},
		{
			name:  "split over many segments",
			shape: func(testing.TB) func([]byte) [][]byte { return segments(100, 100) },
			gap:   time.Millisecond,
		},
		{
			name:  "one byte per write",
			shape: func(testing.TB) func([]byte) [][]byte { return segments(1<<20, 1) },
			gap:   100 * time.Microsecond,
		},
		{name: "three records", shape: reframed(evenCut(3))},
		{name: "seven records in separate segments", shape: func(t testing.TB) func([]byte) [][]byte {
			// Each record goes out on its own, so the engine sees record boundaries between reads.
			return func(p []byte) [][]byte {
				out, err := reframe(p, evenCut(7))
				if err != nil {
					t.Errorf("re-framing the first write: %v", err)
					return [][]byte{p}
				}
				var pieces [][]byte
				for len(out) > 0 {
					n := 5 + (int(out[3])<<8 | int(out[4]))
					pieces = append(pieces, out[:n])
					out = out[n:]
				}
				return pieces
			}
		}, gap: time.Millisecond},
		// The engine/hello cap is 256 records, so a whole 1.8 KB hello cannot go one byte per
		// record; the first 200 handshake bytes do, header and SNI included.
		{name: "one-byte records then the rest", shape: reframed(onesThenRest(200))},
		{name: "250 records, near the record cap", shape: reframed(evenCut(250))},
		{
			name:     "ALPN makes it over 2 KB",
			alpn:     func(testing.TB, *rig) []string { return protos(40, 60) },
			minHello: 2048 + 1,
		},
		{
			name:     "exactly at the 16 KiB cap",
			alpn:     func(t testing.TB, r *rig) []string { return alpnForSize(t, r.clientTC, 16384) },
			minHello: 16384,
		},
		{
			name:  "16,000-byte hello in three records",
			alpn:  func(t testing.TB, r *rig) []string { return alpnForSize(t, r.clientTC, 16000) },
			shape: reframed(evenCut(3)),
		},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(c *engine.Config) { c.HelloTimeout = longPhase })
			cfg := r.clientTC.Clone()
			if sh.alpn != nil {
				cfg.NextProtos = sh.alpn(t, r)
			}
			if sh.minHello > 0 {
				n := handshakeLen(captureHello(t, cfg))
				if n < sh.minHello {
					t.Fatalf("the client's hello is %d bytes, the case needs at least %d", n, sh.minHello)
				}
				t.Logf("ClientHello of %d bytes", n)
			}
			if sh.mlkem && !bytes.Contains(captureHello(t, cfg), mlkemShare) {
				t.Fatal("the client's hello carries no X25519MLKEM768 key share")
			}
			w := &tap{gap: sh.gap}
			if sh.shape != nil {
				w.shape = sh.shape(t)
			}
			c, err := dialTLS(r.cfg.PublicAddr, cfg, w)
			if err != nil {
				t.Fatalf("TLS through the engine: %v", err)
			}
			defer c.Close()
			checkReplay(t, r, w)
			if err := echo(c, bytes.Repeat([]byte("shape "), 3000)); err != nil {
				t.Fatal(err)
			}
			wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
		})
	}
}

// checkReplay compares what the backend read during its handshake with what the client put on
// the wire: the engine must have replayed the hello (and passed the rest) without a changed byte.
func checkReplay(t testing.TB, r *rig, w *tap) {
	t.Helper()
	select {
	case got := <-r.received:
		if sent := w.onWire(); !bytes.Equal(got, sent) {
			t.Fatalf("the backend did not get the client's bytes: %s", firstDiff(got, sent))
		}
	case <-time.After(patience):
		t.Fatal("the backend finished no handshake")
	}
}

// protos returns n distinct ALPN protocols of size bytes.
func protos(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = protoName(i, size)
	}
	return out
}

// Names are routed case-insensitively and with one trailing dot, as DNS has them; crypto/tls
// sends neither a trailing dot nor lets a server accept one, so the client's wire wrapper turns
// the last byte of a same-length placeholder into the dot and the backend turns it back before
// its TLS layer reads it. The engine sits between the two and sees the dotted name.
func TestSNICaseAndTrailingDotRoute(t *testing.T) {
	cases := []struct {
		name       string
		serverName string // what the crypto/tls client is told
		dot        bool   // the placeholder's last byte goes on the wire as a dot
	}{
		{"upper case", "TEST.Example.INTERNAL", false},
		{"trailing dot", domain + "x", true},
		{"upper case and trailing dot", "TEST.EXAMPLE.INTERNALX", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, nil)
			cfg := r.clientTC.Clone()
			cfg.ServerName = tc.serverName
			w := &tap{}
			if tc.dot {
				cfg.InsecureSkipVerify = true // the name on the certificate is checked below
				cfg.VerifyConnection = verifyAs(r.roots, domain)
				var at atomic.Int64 // offset of the dot in the stream
				at.Store(-1)
				w.shape = func(p []byte) [][]byte {
					i := bytes.Index(p, []byte(tc.serverName))
					if i < 0 {
						t.Error("the hello does not carry the server name")
						return [][]byte{p}
					}
					out := bytes.Clone(p)
					i += len(tc.serverName) - 1
					out[i] = '.'
					at.Store(int64(i))
					return [][]byte{out}
				}
				placeholder := tc.serverName[len(tc.serverName)-1]
				r.setBackend(func(c net.Conn) {
					r.echoTLS(c, func(off int, p []byte) {
						if i := int(at.Load()) - off; i >= 0 && i < len(p) && p[i] == '.' {
							p[i] = placeholder
						}
					})
				})
			}
			c, err := dialTLS(r.cfg.PublicAddr, cfg, w)
			if err != nil {
				t.Fatalf("TLS through the engine: %v", err)
			}
			defer c.Close()
			checkReplay(t, r, w)
			if dotted := tc.serverName[:len(tc.serverName)-1] + "."; tc.dot && !strings.Contains(string(w.onWire()), dotted) {
				t.Fatal("the client did not send a trailing dot")
			}
			if err := echo(c, []byte("dns names are case-insensitive")); err != nil {
				t.Fatal(err)
			}
			wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
		})
	}
}

// verifyAs checks the server's chain against roots for name, for a client whose ServerName is a
// placeholder.
func verifyAs(roots *x509.CertPool, name string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
}

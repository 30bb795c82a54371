package hello

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// pipeTimeout bounds every exchange with a crypto/tls peer so a bug fails
// the test instead of hanging it.
const pipeTimeout = 10 * time.Second

// capture runs a real crypto/tls client over net.Pipe and returns the bytes
// it writes up to the end of its first ClientHello.
func capture(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	cli, srv := net.Pipe()
	deadline := time.Now().Add(pipeTimeout)
	cli.SetDeadline(deadline)
	srv.SetDeadline(deadline)
	done := make(chan error, 1)
	go func() {
		err := tls.Client(cli, cfg).Handshake()
		cli.Close() // unblocks readHello if the client gave up before writing
		done <- err
	}()
	raw, err := readHello(srv)
	srv.Close()
	clientErr := <-done // fails with a closed pipe once the hello is read
	if err != nil {
		t.Fatalf("capturing ClientHello: %v (client: %v)", err, clientErr)
	}
	return raw
}

// readHello reads whole TLS records until they carry one handshake message.
// It is deliberately independent of the package under test.
func readHello(r io.Reader) ([]byte, error) {
	var raw, msg []byte
	for len(raw) < 1<<17 {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		frag := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(r, frag); err != nil {
			return nil, err
		}
		raw = append(append(raw, hdr[:]...), frag...)
		msg = append(msg, frag...)
		if len(msg) >= 4 && len(msg) >= 4+(int(msg[1])<<16|int(msg[2])<<8|int(msg[3])) {
			return raw, nil
		}
	}
	return nil, errors.New("no complete ClientHello in 128 KiB")
}

var errStop = errors.New("stop after ClientHello")

// serverSees replays raw into a crypto/tls server and returns the ServerName
// it reports to GetConfigForClient; ok is false when the server rejected the
// hello before that point.
func serverSees(t testing.TB, raw []byte) (name string, ok bool) {
	t.Helper()
	cli, srv := net.Pipe()
	deadline := time.Now().Add(pipeTimeout)
	cli.SetDeadline(deadline)
	srv.SetDeadline(deadline)
	names := make(chan string, 1)
	cfg := &tls.Config{GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		names <- chi.ServerName
		return nil, errStop
	}}
	done := make(chan error, 1)
	go func() { done <- tls.Server(srv, cfg).Handshake() }()
	go func() {
		cli.Write(raw)
		io.Copy(io.Discard, cli) // drain the alert so the server can finish
	}()
	<-done
	srv.Close()
	cli.Close()
	select {
	case n := <-names:
		return n, true
	default:
		return "", false
	}
}

// echConfigList builds a one-entry ECHConfigList (draft-ietf-tls-esni,
// version 0xfe0d) for a fresh X25519 key, as a server would publish it.
func echConfigList(t testing.TB, publicName string) []byte {
	t.Helper()
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(0xfe0d)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint8(7)       // config_id
			b.AddUint16(0x0020) // DHKEM(X25519, HKDF-SHA256)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(key.PublicKey().Bytes()) })
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16(0x0001) // HKDF-SHA256
				b.AddUint16(0x0001) // AES-128-GCM
			})
			b.AddUint8(64) // maximum_name_length
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(publicName)) })
			b.AddUint16(0) // no extensions
		})
	})
	return b.BytesOrPanic()
}

// ext is one hand-built extension.
type ext struct {
	typ  uint16
	data []byte
}

// spec describes a hand-built ClientHello. Zero fields get sane defaults.
type spec struct {
	version     uint16
	sessionID   []byte
	suites      []byte // raw cipher_suites bytes
	compression []byte
	noExts      bool
	exts        []ext
}

// field offsets, in the handshake message, of the length prefixes a test may
// want to falsify; widths are in fieldWidth.
const (
	fHandshake = "handshake"
	fSessionID = "session_id"
	fSuites    = "cipher_suites"
	fComp      = "compression"
	fExts      = "extensions"
	fExt0      = "first extension"
	fSNIList   = "server_name list"
	fSNIName   = "host_name"
)

var fieldWidth = map[string]int{
	fHandshake: 3, fSessionID: 1, fSuites: 2, fComp: 1, fExts: 2, fExt0: 2, fSNIList: 2, fSNIName: 2,
}

// message marshals the handshake message and reports where its length
// prefixes sit. The SNI offsets refer to a server_name extension built by
// sniExt placed first.
func (s spec) message() (msg []byte, at map[string]int) {
	at = map[string]int{}
	if s.version == 0 {
		s.version = 0x0303
	}
	if s.suites == nil {
		s.suites = []byte{0x13, 0x01, 0xc0, 0x2f}
	}
	if s.compression == nil {
		s.compression = []byte{0}
	}
	msg = []byte{typeClientHello, 0, 0, 0}
	at[fHandshake] = 1
	msg = append(msg, byte(s.version>>8), byte(s.version))
	msg = append(msg, bytes.Repeat([]byte{0xab}, 32)...)
	at[fSessionID] = len(msg)
	msg = append(msg, byte(len(s.sessionID)))
	msg = append(msg, s.sessionID...)
	at[fSuites] = len(msg)
	msg = append(msg, byte(len(s.suites)>>8), byte(len(s.suites)))
	msg = append(msg, s.suites...)
	at[fComp] = len(msg)
	msg = append(msg, byte(len(s.compression)))
	msg = append(msg, s.compression...)
	if !s.noExts {
		at[fExts] = len(msg)
		msg = append(msg, 0, 0)
		start := len(msg)
		for i, e := range s.exts {
			if i == 0 {
				at[fExt0] = len(msg) + 2
				at[fSNIList] = len(msg) + 4
				at[fSNIName] = len(msg) + 7
			}
			msg = append(msg, byte(e.typ>>8), byte(e.typ), byte(len(e.data)>>8), byte(len(e.data)))
			msg = append(msg, e.data...)
		}
		putUint(msg[at[fExts]:], 2, len(msg)-start)
	}
	putUint(msg[1:], 3, len(msg)-4)
	return msg, at
}

// bytes returns the hello in one record.
func (s spec) bytes() []byte {
	msg, _ := s.message()
	return frameMsg(msg, len(msg))
}

func putUint(b []byte, width, v int) {
	for i := width - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getUint(b []byte, width int) int {
	v := 0
	for _, c := range b[:width] {
		v = v<<8 | int(c)
	}
	return v
}

// sniExt builds a server_name extension with one host_name per name.
func sniExt(names ...string) ext {
	var list []byte
	for _, n := range names {
		list = append(list, 0, byte(len(n)>>8), byte(len(n)))
		list = append(list, n...)
	}
	return ext{extServerName, append([]byte{byte(len(list) >> 8), byte(len(list))}, list...)}
}

// alpnExt builds an application_layer_protocol_negotiation extension.
func alpnExt(protos ...string) ext {
	var list []byte
	for _, p := range protos {
		list = append(list, byte(len(p)))
		list = append(list, p...)
	}
	return ext{extALPN, append([]byte{byte(len(list) >> 8), byte(len(list))}, list...)}
}

// basicSpec is a minimal well-formed hello for name.
func basicSpec(name string) spec {
	return spec{exts: []ext{sniExt(name), alpnExt("h2", "http/1.1"), {0x002b, []byte{2, 3, 4}}}}
}

// frameMsg wraps a handshake message in records of at most size bytes each.
func frameMsg(msg []byte, size int) []byte {
	var sizes []int
	for n := len(msg); n > 0; n -= size {
		sizes = append(sizes, min(n, size))
	}
	return frameSizes(msg, sizes)
}

// frameSizes wraps a handshake message in records of the given sizes.
func frameSizes(msg []byte, sizes []int) []byte {
	var out []byte
	for _, n := range sizes {
		out = append(out, recordHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	if len(msg) != 0 {
		panic("frameSizes: sizes do not cover the message")
	}
	return out
}

// unframe returns the handshake message carried by well-formed records.
func unframe(t testing.TB, raw []byte) []byte {
	t.Helper()
	var msg []byte
	for len(raw) > 0 {
		if len(raw) < 5 {
			t.Fatalf("trailing %d bytes", len(raw))
		}
		n := int(raw[3])<<8 | int(raw[4])
		msg = append(msg, raw[5:5+n]...)
		raw = raw[5+n:]
	}
	return msg
}

// randomSizes splits n bytes into k random positive parts, with a bias
// towards 1-byte parts.
func randomSizes(r *mrand.Rand, n, k int) []int {
	k = min(k, n)
	cuts := map[int]bool{}
	for len(cuts) < k-1 {
		c := 1 + r.IntN(n-1)
		cuts[c] = true
		if r.IntN(3) == 0 && c+1 < n { // make a 1-byte part
			if len(cuts) < k-1 {
				cuts[c+1] = true
			}
		}
	}
	sizes := make([]int, 0, k)
	prev := 0
	for i := 1; i <= n; i++ {
		if cuts[i] || i == n {
			sizes = append(sizes, i-prev)
			prev = i
		}
	}
	return sizes
}

// sameHello compares every field of two results.
func sameHello(a, b ClientHello) error {
	switch {
	case !bytes.Equal(a.ServerName, b.ServerName):
		return fmt.Errorf("ServerName %q vs %q", a.ServerName, b.ServerName)
	case !bytes.Equal(a.ALPN, b.ALPN):
		return fmt.Errorf("ALPN %q vs %q", a.ALPN, b.ALPN)
	case a.ECH != b.ECH:
		return fmt.Errorf("ECH %v vs %v", a.ECH, b.ECH)
	case a.Length != b.Length:
		return fmt.Errorf("Length %d vs %d", a.Length, b.Length)
	case a.Records != b.Records:
		return fmt.Errorf("Records %d vs %d", a.Records, b.Records)
	}
	return nil
}

// clone copies the aliased slices out of a result.
func clone(h ClientHello) ClientHello {
	h.ServerName = bytes.Clone(h.ServerName)
	h.ALPN = ProtocolList(bytes.Clone(h.ALPN))
	return h
}

// randomName returns a syntactically valid name with mixed case.
func randomName(r *mrand.Rand) string {
	const alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	const chars = alpha + "0123456789-"
	var b []byte
	labels := 1 + r.IntN(5)
	if r.IntN(8) == 0 {
		labels = 40 // long names near the 253-byte limit
	}
	for i := 0; i < labels; i++ {
		n := 1 + r.IntN(12)
		if len(b)+n+1 > MaxNameLen {
			break
		}
		if i > 0 {
			b = append(b, '.')
		}
		// Start with a letter so the last label is never numeric.
		b = append(b, alpha[r.IntN(len(alpha))])
		for j := 1; j < n; j++ {
			b = append(b, chars[r.IntN(len(chars))])
		}
	}
	return string(b)
}

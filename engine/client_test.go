package engine_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// The client side of the tests: real crypto/tls clients whose first flight can be captured,
// reshaped on the wire, or replayed by hand.

// captureHello returns the TLS records a crypto/tls client with cfg sends as its first flight.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(a, cfg).Handshake()
	}()
	defer func() {
		a.Close()
		b.Close()
		<-done
	}()
	_ = b.SetDeadline(time.Now().Add(patience))
	out, err := readHello(b)
	if err != nil {
		t.Fatalf("capturing a ClientHello: %v", err)
	}
	return out
}

// readHello reads TLS records until they carry one whole handshake message.
func readHello(r io.Reader) ([]byte, error) {
	var out, msg []byte
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		if hdr[0] != 0x16 {
			return nil, fmt.Errorf("record type %d, want handshake", hdr[0])
		}
		body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		out = append(append(out, hdr[:]...), body...)
		msg = append(msg, body...)
		if len(msg) >= 4 && len(msg) >= 4+(int(msg[1])<<16|int(msg[2])<<8|int(msg[3])) {
			return out, nil
		}
	}
}

// handshakeLen is the length of the handshake message (header included) that the records in
// hello start with.
func handshakeLen(hello []byte) int {
	return 4 + (int(hello[6])<<16 | int(hello[7])<<8 | int(hello[8]))
}

// alpnForSize returns ALPN protocols that make cfg's ClientHello a handshake message of exactly
// target bytes (its 4-byte header included).
func alpnForSize(t testing.TB, cfg *tls.Config, target int) []string {
	t.Helper()
	base := cfg.Clone()
	base.NextProtos = nil
	// The extension costs its type, its length and the list length; each protocol its length byte.
	need := target - handshakeLen(captureHello(t, base)) - 6
	if need < 2 {
		t.Fatalf("a ClientHello of %d bytes cannot be reached with ALPN", target)
	}
	var protos []string
	for i := 0; need > 0; i++ {
		cost := min(need, 256)
		if need-cost == 1 {
			cost-- // leave room for one more protocol of at least one byte
		}
		protos = append(protos, protoName(i, cost-1))
		need -= cost
	}
	sized := cfg.Clone()
	sized.NextProtos = protos
	if got := handshakeLen(captureHello(t, sized)); got != target {
		t.Fatalf("ALPN sizing: ClientHello is %d bytes, want %d", got, target)
	}
	return protos
}

// protoName is a distinct ALPN protocol name of n bytes.
func protoName(i, n int) string {
	return (fmt.Sprintf("p%d-", i) + strings.Repeat("x", n))[:n]
}

// reframe re-frames the handshake bytes carried by the records in p into records whose
// fragments have the lengths cut returns (they must add up to the total).
func reframe(p []byte, cut func(total int) []int) ([]byte, error) {
	var payload []byte
	var version [2]byte
	for rest := p; len(rest) > 0; {
		if len(rest) < 5 || rest[0] != 0x16 {
			return nil, errors.New("not a handshake record")
		}
		n := int(rest[3])<<8 | int(rest[4])
		if len(rest) < 5+n {
			return nil, errors.New("partial record")
		}
		copy(version[:], rest[1:3])
		payload = append(payload, rest[5:5+n]...)
		rest = rest[5+n:]
	}
	var out []byte
	for _, n := range cut(len(payload)) {
		if n <= 0 || n > len(payload) {
			return nil, fmt.Errorf("bad fragment length %d with %d bytes left", n, len(payload))
		}
		out = append(out, 0x16, version[0], version[1], byte(n>>8), byte(n))
		out = append(out, payload[:n]...)
		payload = payload[n:]
	}
	if len(payload) != 0 {
		return nil, fmt.Errorf("%d bytes left after the fragments", len(payload))
	}
	return out, nil
}

// evenCut splits total bytes into k fragments.
func evenCut(k int) func(int) []int {
	return func(total int) []int {
		var cut []int
		for i := range k {
			cut = append(cut, total*(i+1)/k-total*i/k)
		}
		return cut
	}
}

// onesThenRest makes the first n fragments one byte long and puts the rest in one fragment.
func onesThenRest(n int) func(int) []int {
	return func(total int) []int {
		cut := make([]int, 0, n+1)
		for range min(n, total) {
			cut = append(cut, 1)
		}
		if total > n {
			cut = append(cut, total-n)
		}
		return cut
	}
}

// tap wraps a client's TCP connection: it records every byte put on the wire and lets a test
// reshape the first write, which for a TLS client is its ClientHello.
type tap struct {
	net.Conn
	// shape turns the first write into the pieces to send, one write each; nil sends it as is.
	shape func(p []byte) [][]byte
	// gap is the pause between pieces, so that each leaves as its own TCP segment.
	gap time.Duration

	mu     sync.Mutex
	sent   []byte
	shaped bool
}

func (w *tap) Write(p []byte) (int, error) {
	w.mu.Lock()
	first := !w.shaped
	w.shaped = true
	w.mu.Unlock()
	pieces := [][]byte{p}
	if first && w.shape != nil {
		pieces = w.shape(p)
	}
	for i, piece := range pieces {
		if i > 0 && w.gap > 0 {
			time.Sleep(w.gap)
		}
		n, err := w.Conn.Write(piece)
		w.mu.Lock()
		if len(w.sent) < 1<<20 {
			w.sent = append(w.sent, piece[:n]...)
		}
		w.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// onWire is every byte written so far.
func (w *tap) onWire() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.sent...)
}

// segments cuts p into one-byte pieces for its first head bytes, then pieces of size bytes.
func segments(head, size int) func([]byte) [][]byte {
	return func(p []byte) [][]byte {
		var out [][]byte
		for i := 0; i < len(p); {
			n := size
			if i < head {
				n = 1
			}
			n = min(n, len(p)-i)
			out = append(out, p[i:i+n])
			i += n
		}
		return out
	}
}

// dialTLS connects a TLS client through w (nil: a plain wrapper) and completes the handshake.
func dialTLS(addr string, cfg *tls.Config, w *tap) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		return nil, err
	}
	if w == nil {
		w = &tap{}
	}
	w.Conn = raw
	c := tls.Client(w, cfg)
	_ = c.SetDeadline(time.Now().Add(patience))
	if err := c.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// echo sends msg and expects it back.
func echo(c net.Conn, msg []byte) error {
	_ = c.SetDeadline(time.Now().Add(patience))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// goodClient is a well-behaved client: TLS through the engine, one echo, close.
func goodClient(r *rig) error {
	c, err := dialTLS(r.cfg.PublicAddr, r.clientTC, nil)
	if err != nil {
		return fmt.Errorf("good client: %w", err)
	}
	defer c.Close()
	if err := echo(c, []byte("a good client's message")); err != nil {
		return fmt.Errorf("good client: %w", err)
	}
	return nil
}

// goodClientAsync runs goodClient on its own goroutine; receive the result from the channel.
func goodClientAsync(r *rig) <-chan error {
	done := make(chan error, 1)
	go func() { done <- goodClient(r) }()
	return done
}

// wait receives from done, failing the test if nothing comes in time.
func wait(t testing.TB, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(2 * patience):
		t.Errorf("%s: no result in time", what)
	}
}

// asyncTLS is a TLS client whose handshake goes on in the background, for tests that play the
// private side themselves; wait on done before using c.
type asyncTLS struct {
	c    *tls.Conn
	done chan error
}

// startTLS connects an asyncTLS client to addr.
func startTLS(t testing.TB, addr string, cfg *tls.Config) *asyncTLS {
	t.Helper()
	raw := dial(t, addr)
	a := &asyncTLS{c: tls.Client(raw, cfg), done: make(chan error, 1)}
	_ = a.c.SetDeadline(time.Now().Add(2 * patience))
	go func() {
		err := a.c.Handshake()
		_ = a.c.SetDeadline(time.Time{})
		a.done <- err
	}()
	return a
}

// firstDiff describes where two byte strings part.
func firstDiff(a, b []byte) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d (%#02x vs %#02x); lengths %d and %d", i, a[i], b[i], len(a), len(b))
		}
	}
	return fmt.Sprintf("one is a prefix of the other; lengths %d and %d", len(a), len(b))
}

package relay

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testTimeout bounds every single wait in the tests, so a bug fails a test
// instead of hanging it. It is a safety net, not a performance assertion.
const testTimeout = 60 * time.Second

// testRelay starts a relay whose OnDone feeds the returned channel (and then the
// config's own OnDone, if any). Cleanup closes it and fails the test if the
// channel overflowed, which would mean OnDone was called more often than the test
// can account for.
func testRelay(t testing.TB, cfg Config) (*Relay, <-chan Stats) {
	t.Helper()
	done := make(chan Stats, 4096)
	var overflow atomic.Int64
	user := cfg.OnDone
	cfg.OnDone = func(s Stats) {
		if user != nil {
			user(s)
		}
		select {
		case done <- s:
		default:
			overflow.Add(1)
		}
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		if n := overflow.Load(); n > 0 {
			t.Errorf("OnDone channel overflowed by %d", n)
		}
	})
	return r, done
}

// rig builds "client <-> [a] relay [b] <-> server" pipelines over loopback TCP.
type rig struct {
	front, back *net.TCPListener

	mu   sync.Mutex
	ends []*net.TCPConn // client and server conns handed to tests
}

// closeEnds closes every client and server conn the rig has handed out.
func (g *rig) closeEnds() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.ends {
		_ = c.Close()
	}
}

func newRig(t testing.TB) *rig {
	return newRigMSS(t, 0)
}

// newRigMSS is newRig with the server side's MSS set (0: the loopback default of
// almost 64 KiB). A small MSS keeps TCP window updates flowing when a test shrinks
// socket buffers below the loopback MSS, which would otherwise leave the sender to
// the zero-window probe timer.
func newRigMSS(t testing.TB, backMSS int) *rig {
	t.Helper()
	listen := func(mss int) *net.TCPListener {
		lc := net.ListenConfig{}
		if mss > 0 {
			lc.Control = func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, mss)
				})
				return errors.Join(err, serr)
			}
		}
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		return ln.(*net.TCPListener)
	}
	return &rig{front: listen(0), back: listen(backMSS)}
}

// conns returns the four ends of one pipeline: client and server for the test,
// a and b for the relay. client and server get a deadline and are closed at
// cleanup.
func (g *rig) conns(t testing.TB) (client, a, b, server *net.TCPConn) {
	t.Helper()
	pair := func(ln *net.TCPListener) (dialed, accepted *net.TCPConn) {
		_ = ln.SetDeadline(time.Now().Add(testTimeout))
		d, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		acc, err := ln.AcceptTCP()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		return d, acc
	}
	client, a = pair(g.front)
	b, server = pair(g.back)
	for _, c := range []*net.TCPConn{client, server} {
		_ = c.SetDeadline(time.Now().Add(testTimeout))
	}
	g.mu.Lock()
	if len(g.ends) == 0 {
		t.Cleanup(g.closeEnds)
	}
	g.ends = append(g.ends, client, server)
	g.mu.Unlock()
	return client, a, b, server
}

// pipeline builds a pipeline and hands a and b to r.
func (g *rig) pipeline(t testing.TB, r *Relay, toA, toB []byte, tag any) (client, server *net.TCPConn) {
	t.Helper()
	client, a, b, server := g.conns(t)
	if err := r.AddConns(a, b, toA, toB, tag); err != nil {
		t.Fatalf("AddConns: %v", err)
	}
	return client, server
}

// rawFDs builds a pipeline and returns the relay ends as descriptors, ready for Add.
func (g *rig) rawFDs(t testing.TB) (client, server *net.TCPConn, a, b int) {
	t.Helper()
	client, ac, bc, server := g.conns(t)
	a, err := dupConn(ac)
	if err != nil {
		t.Fatalf("dup: %v", err)
	}
	b, err = dupConn(bc)
	if err != nil {
		t.Fatalf("dup: %v", err)
	}
	return client, server, a, b
}

// waitStats waits for n OnDone reports.
func waitStats(t testing.TB, done <-chan Stats, n int) []Stats {
	t.Helper()
	out := make([]Stats, 0, n)
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for len(out) < n {
		select {
		case s := <-done:
			out = append(out, s)
		case <-timer.C:
			t.Fatalf("got %d of %d OnDone reports: %+v", len(out), n, out)
		}
	}
	return out
}

// noMoreStats checks that no OnDone report arrives within d.
func noMoreStats(t testing.TB, done <-chan Stats, d time.Duration) {
	t.Helper()
	select {
	case s := <-done:
		t.Fatalf("unexpected OnDone: %+v", s)
	case <-time.After(d):
	}
}

// fdCount is the number of open descriptors of this process.
func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(ents)
}

// fdSet names what each open descriptor refers to ("socket:[123]",
// "pipe:[456]", "anon_inode:[eventpoll]"), counted. Unlike bare descriptor
// numbers, these names are not reused after a close.
func fdSet(t testing.TB) map[string]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	set := map[string]int{}
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			set[target]++
		}
	}
	return set
}

// waitNoNewFDs waits until every open descriptor was already open at baseline
// (closes in Go may complete a moment after Close returns when another goroutine
// was in a call) and fails the test with the newcomers if that does not happen.
func waitNoNewFDs(t testing.TB, baseline map[string]int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var extra []string
		for target, n := range fdSet(t) {
			if n > baseline[target] {
				extra = append(extra, target)
			}
		}
		if len(extra) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptors opened during the test and still open: %v", extra)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	buf := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(buf)
	return buf
}

// sendStream writes n pseudo-random bytes and returns their SHA-256.
func sendStream(w io.Writer, seed uint64, n int64) ([32]byte, error) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	src := rand.NewChaCha8(key)
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for n > 0 {
		k := int(min(n, int64(len(buf))))
		_, _ = src.Read(buf[:k])
		h.Write(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return [32]byte{}, err
		}
		n -= int64(k)
	}
	return [32]byte(h.Sum(nil)), nil
}

// recvStream reads to EOF and returns the byte count and SHA-256.
func recvStream(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		h.Write(buf[:n])
		total += int64(n)
		if err == io.EOF {
			return total, [32]byte(h.Sum(nil)), nil
		}
		if err != nil {
			return total, [32]byte(h.Sum(nil)), err
		}
	}
}

// readEnd reads until the connection ends and returns the error that ended it
// (nil for a clean EOF). A deadline error means the connection did not end.
func readEnd(c net.Conn) error {
	_, err := io.Copy(io.Discard, c)
	return err
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// async runs f on a goroutine; the returned channel yields its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func wait(t testing.TB, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("%s: still running after %v", what, testTimeout)
	}
}

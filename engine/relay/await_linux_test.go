package relay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// firstCall is one call of an Awaiter's First as the test Awaiter saw it.
type firstCall struct {
	fd   int
	data []byte
}

// testAwaiter records every call on buffered channels and lets decide choose what First
// returns (nil decide: always ErrMore). Its sends never block the loop; an overflow fails the
// test at cleanup. decide runs on a loop goroutine: it reports problems with t.Errorf, never
// t.Fatal.
type testAwaiter struct {
	decide func(fd int, data []byte) (int, any, error)
	// rewrite, if set, gives the Skip and Head of a Pairing decide made.
	rewrite  func(data []byte) (skip int, head []byte)
	firsts   chan firstCall
	gone     chan error
	overflow atomic.Int64
}

func newAwaiter(t testing.TB, decide func(fd int, data []byte) (int, any, error)) *testAwaiter {
	a := &testAwaiter{decide: decide, firsts: make(chan firstCall, 1024), gone: make(chan error, 1024)}
	t.Cleanup(func() {
		if n := a.overflow.Load(); n > 0 {
			t.Errorf("Awaiter channels overflowed by %d", n)
		}
	})
	return a
}

func (a *testAwaiter) First(fd int, data []byte) (Pairing, error) {
	select {
	case a.firsts <- firstCall{fd, bytes.Clone(data)}:
	default:
		a.overflow.Add(1)
	}
	if a.decide == nil {
		return Pairing{Peer: -1}, ErrMore
	}
	peer, tag, err := a.decide(fd, data)
	pg := Pairing{Peer: peer, Tag: tag}
	if err == nil && a.rewrite != nil {
		pg.Skip, pg.Head = a.rewrite(data)
	}
	return pg, err
}

func (a *testAwaiter) Gone(err error) {
	select {
	case a.gone <- err:
	default:
		a.overflow.Add(1)
	}
}

// waitFirst and waitGone wait for the next First and Gone call.
func (a *testAwaiter) waitFirst(t testing.TB) firstCall {
	t.Helper()
	return next(t, "First", a.firsts)
}
func (a *testAwaiter) waitGone(t testing.TB) error { t.Helper(); return next(t, "Gone", a.gone) }

// next receives from ch within testTimeout.
func next[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("no %s within %v", what, testTimeout)
		panic("unreachable")
	}
}

// noCalls checks that neither First nor Gone is called within d.
func (a *testAwaiter) noCalls(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case c := <-a.firsts:
		t.Fatalf("unexpected First(%d, %q)", c.fd, c.data)
	case err := <-a.gone:
		t.Fatalf("unexpected Gone(%v)", err)
	case <-time.After(d):
	}
}

// pairWhen returns a decide that waits for exactly want and then pairs with whatever peer
// gives (a socket for the relay to own, or an error).
func pairWhen(t testing.TB, want []byte, tag any, peer func() (int, error)) func(int, []byte) (int, any, error) {
	return func(_ int, data []byte) (int, any, error) {
		if len(data) < len(want) && bytes.HasPrefix(want, data) {
			return -1, nil, ErrMore
		}
		if !bytes.Equal(data, want) {
			t.Errorf("First got %q, want %q", data, want)
			return -1, nil, errors.New("unexpected first bytes")
		}
		fd, err := peer()
		if err != nil {
			t.Errorf("First: peer: %v", err)
			return -1, nil, err
		}
		return fd, tag, nil
	}
}

// connectNB starts a non-blocking connect to addr and returns the socket with the connect
// under way (or already done: loopback may finish it at once).
func connectNB(addr net.Addr) (int, error) {
	return Connect(addr.(*net.TCPAddr).AddrPort(), testTimeout)
}

// accept takes the next connection of ln; it gets the test deadline and is closed at cleanup.
func accept(t testing.TB, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	_ = ln.SetDeadline(time.Now().Add(testTimeout))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// awaitedConn dials ln the way the private proxy dials the public one: fd, the dialed end,
// is for Await; public, the accepted end, is the test's.
func awaitedConn(t testing.TB, ln *net.TCPListener) (fd int, public *net.TCPConn) {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	public = accept(t, ln)
	if fd, err = dupConn(c); err != nil {
		t.Fatalf("dup: %v", err)
	}
	return fd, public
}

// readN reads exactly n bytes.
func readN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

// eventually waits until cond holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testTimeout)
		}
	}
}

var greeting = []byte("standby-token-0123456789\n")

// TestAwaitPairsWithBackend: the whole life of an awaited socket. The greeting reaches the
// public side, its first message reaches First and then the backend, ahead of everything
// else; then the pair relays both ways, passes on a half-close, and reports its tag and the
// bytes delivered (the first message counted in AToB).
func TestAwaitPairsWithBackend(t *testing.T) {
	for _, mode := range []string{"connecting", "connected"} {
		t.Run(mode, func(t *testing.T) {
			r, done := testRelay(t, Config{})
			g := newRig(t)
			hello := []byte("hello")
			peer := func() (int, error) { return connectNB(g.back.Addr()) }
			if mode == "connected" {
				c, err := net.DialTCP("tcp", nil, g.back.Addr().(*net.TCPAddr))
				if err != nil {
					t.Fatal(err)
				}
				backFD, err := dupConn(c)
				if err != nil {
					t.Fatal(err)
				}
				peer = func() (int, error) { return backFD, nil }
			}
			aw := newAwaiter(t, pairWhen(t, hello, "session", peer))
			fd, public := awaitedConn(t, g.front)
			if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
				t.Fatalf("Await: %v", err)
			}
			if got := readN(t, public, len(greeting)); !bytes.Equal(got, greeting) {
				t.Fatalf("public side got greeting %q, want %q", got, greeting)
			}
			if _, err := public.Write(hello); err != nil {
				t.Fatal(err)
			}
			backend := accept(t, g.back)
			if got := readN(t, backend, len(hello)); !bytes.Equal(got, hello) {
				t.Fatalf("backend got %q first, want %q", got, hello)
			}
			for call := (firstCall{}); !bytes.Equal(call.data, hello); {
				if call = aw.waitFirst(t); call.fd != fd {
					t.Fatalf("First got fd %d, want the awaited socket %d", call.fd, fd)
				}
			}

			up, down := randomBytes(1, 300<<10), randomBytes(2, 200<<10)
			var atBackend, atPublic []byte
			steps := []<-chan error{
				async(func() error { _, err := public.Write(up); return err }),
				async(func() error { _, err := backend.Write(down); return err }),
				async(func() error { atBackend = make([]byte, len(up)); _, err := io.ReadFull(backend, atBackend); return err }),
				async(func() error { atPublic = make([]byte, len(down)); _, err := io.ReadFull(public, atPublic); return err }),
			}
			for i, ch := range steps {
				wait(t, fmt.Sprintf("both ways, step %d", i), ch)
			}
			if !bytes.Equal(atBackend, up) || !bytes.Equal(atPublic, down) {
				t.Fatal("bytes relayed wrong")
			}

			// The public side half-closes: the backend sees EOF and can still answer.
			if err := public.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if rest, err := io.ReadAll(backend); err != nil || len(rest) != 0 {
				t.Fatalf("backend after the public side's FIN: %d bytes, %v; want a clean EOF", len(rest), err)
			}
			late := []byte("answer after EOF")
			if _, err := backend.Write(late); err != nil {
				t.Fatal(err)
			}
			if err := backend.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(public); err != nil || !bytes.Equal(got, late) {
				t.Fatalf("public side got %q, %v; want %q and EOF", got, err, late)
			}

			s := waitStats(t, done, 1)[0]
			wantAB, wantBA := int64(len(hello)+len(up)), int64(len(down)+len(late))
			if s.Reason != ReasonDone || s.Tag != "session" || s.AToB != wantAB || s.BToA != wantBA {
				t.Fatalf("stats %+v, want done, tag session, AToB %d, BToA %d", s, wantAB, wantBA)
			}
			eventually(t, "Pairs() back to 0", func() bool { return r.Pairs() == 0 && r.Awaiting() == 0 })
		})
	}
}

// TestAwaitConnecting: an awaited socket handed over while its own non-blocking connect is
// under way gets its greeting once the connect completes.
func TestAwaitConnecting(t *testing.T) {
	r, _ := testRelay(t, Config{})
	g := newRig(t)
	fd, err := connectNB(g.front.Addr())
	if err != nil {
		t.Fatal(err)
	}
	aw := newAwaiter(t, func(int, []byte) (int, any, error) { return -1, nil, errors.New("declined") })
	if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
		t.Fatalf("Await: %v", err)
	}
	public := accept(t, g.front)
	if got := readN(t, public, len(greeting)); !bytes.Equal(got, greeting) {
		t.Fatalf("greeting %q, want %q", got, greeting)
	}
	if _, err := public.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if c := aw.waitFirst(t); string(c.data) != "hi" {
		t.Fatalf("First got %q", c.data)
	}
	if err := readEnd(public); err != nil {
		t.Fatalf("declined socket: %v, want a clean EOF", err)
	}
}

// TestAwaitMore: First returns ErrMore until a length-prefixed message is complete; each call
// sees everything that arrived so far, and the backend gets the whole message first.
func TestAwaitMore(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	payload := []byte("a client hello in three pieces")
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(payload)))
	msg = append(msg, payload...)
	aw := newAwaiter(t, func(_ int, data []byte) (int, any, error) {
		if len(data) < 2 || len(data) < 2+int(binary.BigEndian.Uint16(data)) {
			return -1, nil, ErrMore
		}
		if !bytes.Equal(data, msg) {
			t.Errorf("First got %q, want %q", data, msg)
			return -1, nil, errors.New("bad message")
		}
		fd, err := connectNB(g.back.Addr())
		return fd, "framed", err
	})
	fd, public := awaitedConn(t, g.front)
	if err := r.Await(fd, nil, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	// Each piece is sent only once First has seen the one before (and after a pause), so each
	// call sees exactly the bytes sent so far.
	sent := 0
	for i, cut := range []int{1, 10, len(msg)} {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := public.Write(msg[sent:cut]); err != nil {
			t.Fatal(err)
		}
		c := aw.waitFirst(t)
		if !bytes.Equal(c.data, msg[:cut]) {
			t.Fatalf("First call %d got %q, want everything so far, %q", i, c.data, msg[:cut])
		}
		sent = cut
	}
	backend := accept(t, g.back)
	if got := readN(t, backend, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("backend got %q, want %q", got, msg)
	}
	atPublic, atBackend := exchange(t, public, backend, []byte("more"), []byte("reply"))
	if string(atPublic) != "reply" || string(atBackend) != "more" {
		t.Fatalf("public got %q, backend %q", atPublic, atBackend)
	}
	if s := waitStats(t, done, 1)[0]; s.Reason != ReasonDone || s.Tag != "framed" || s.AToB != int64(len(msg)+4) || s.BToA != 5 {
		t.Fatalf("stats %+v", s)
	}
}

// TestAwaitFirstDeclines: a First that returns an error has the socket closed with a FIN, not
// a reset, and is not followed by Gone or OnDone. An Awaiter that took a duplicate first keeps
// the connection.
func TestAwaitFirstDeclines(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	aw := newAwaiter(t, func(int, []byte) (int, any, error) { return -1, nil, errors.New("no route") })
	fd, public := awaitedConn(t, g.front)
	if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	readN(t, public, len(greeting))
	if _, err := public.Write([]byte("bogus")); err != nil {
		t.Fatal(err)
	}
	if n, err := public.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("public side read %d bytes, %v; want io.EOF (a FIN, not a reset)", n, err)
	}
	aw.waitFirst(t)
	eventually(t, "Awaiting() back to 0", func() bool { return r.Awaiting() == 0 })
	aw.noCalls(t, 50*time.Millisecond)
	noMoreStats(t, done, 20*time.Millisecond)
	if n := r.Pairs(); n != 0 {
		t.Fatalf("Pairs() = %d", n)
	}

	// Taking the connection elsewhere: First duplicates fd and declines.
	dups := make(chan int, 1)
	aw = newAwaiter(t, func(fd int, _ []byte) (int, any, error) {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Errorf("dup: %v", err)
		}
		select {
		case dups <- d:
		default:
			t.Errorf("First called again")
		}
		return -1, nil, errors.New("taken elsewhere")
	})
	fd, public = awaitedConn(t, g.front)
	if err := r.Await(fd, nil, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	if _, err := public.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	d := next(t, "dup", dups)
	t.Cleanup(func() { _ = unix.Close(d) })
	eventually(t, "Awaiting() back to 0", func() bool { return r.Awaiting() == 0 })
	if _, err := unix.Write(d, []byte("still here")); err != nil {
		t.Fatalf("write on the duplicate: %v", err)
	}
	if got := readN(t, public, 10); string(got) != "still here" {
		t.Fatalf("public side got %q through the duplicate", got)
	}
}

// TestAwaitGone: Gone reports a peer that closed without a word (io.EOF) and a connect that
// was refused (ECONNREFUSED); First is never called.
func TestAwaitGone(t *testing.T) {
	r, _ := testRelay(t, Config{})
	g := newRig(t)

	aw := newAwaiter(t, nil)
	fd, public := awaitedConn(t, g.front)
	if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	readN(t, public, len(greeting)) // closing with the greeting unread would be a reset
	_ = public.Close()
	if err := aw.waitGone(t); err != io.EOF {
		t.Fatalf("Gone(%v), want io.EOF", err)
	}
	eventually(t, "Awaiting() back to 0", func() bool { return r.Awaiting() == 0 })
	aw.noCalls(t, 20*time.Millisecond)

	// A port nothing listens on: listen, note the port, close.
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr()
	_ = ln.Close()
	for try := 0; ; try++ {
		fd, err = connectNB(closedAddr)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.ECONNREFUSED) || try == 20 {
			t.Fatalf("connect: %v", err)
		}
		// Loopback refused it before connect returned: that tests nothing of the relay.
	}
	aw = newAwaiter(t, nil)
	if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	if err := aw.waitGone(t); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Gone(%v), want ECONNREFUSED", err)
	}
	eventually(t, "Awaiting() back to 0", func() bool { return r.Awaiting() == 0 })
	if n := r.Pairs(); n != 0 {
		t.Fatalf("Pairs() = %d", n)
	}
}

// TestAwaitTimeout: a socket still silent after its wait is closed with ErrAwaitTimeout, also
// when no IdleTimeout makes the loop sweep.
func TestAwaitTimeout(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	aw := newAwaiter(t, nil)
	fd, public := awaitedConn(t, g.front)
	if err := r.Await(fd, greeting, 200*time.Millisecond, aw); err != nil {
		t.Fatal(err)
	}
	if err := aw.waitGone(t); !errors.Is(err, ErrAwaitTimeout) {
		t.Fatalf("Gone(%v), want ErrAwaitTimeout", err)
	}
	got, err := io.ReadAll(public)
	if err != nil || !bytes.Equal(got, greeting) {
		t.Fatalf("public side got %q, %v; want the greeting, then EOF", got, err)
	}
	if r.Awaiting() != 0 || r.Pairs() != 0 {
		t.Fatalf("Awaiting() = %d, Pairs() = %d", r.Awaiting(), r.Pairs())
	}
	aw.noCalls(t, 20*time.Millisecond)
	noMoreStats(t, done, 20*time.Millisecond)
}

// TestAwaitPrefixTooLarge: a peer that sends more than MaxPrefix bytes without First deciding
// is dropped with ErrPrefixTooLarge; First never sees more than MaxPrefix.
func TestAwaitPrefixTooLarge(t *testing.T) {
	r, _ := testRelay(t, Config{})
	g := newRig(t)
	aw := newAwaiter(t, nil)
	fd, public := awaitedConn(t, g.front)
	if err := r.Await(fd, nil, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	big := randomBytes(3, MaxPrefix+1)
	if _, err := public.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := aw.waitGone(t); !errors.Is(err, ErrPrefixTooLarge) {
		t.Fatalf("Gone(%v), want ErrPrefixTooLarge", err)
	}
	last := 0
	for len(aw.firsts) > 0 {
		c := <-aw.firsts
		if len(c.data) <= last || len(c.data) > MaxPrefix || !bytes.Equal(c.data, big[:len(c.data)]) {
			t.Fatalf("First got %d bytes after %d (limit %d), or not what was sent", len(c.data), last, MaxPrefix)
		}
		last = len(c.data)
	}
	if last == 0 {
		t.Fatal("First never called")
	}
	if err := readEnd(public); isTimeout(err) {
		t.Fatal("public side still open")
	}
	eventually(t, "Awaiting() back to 0", func() bool { return r.Awaiting() == 0 && r.Pairs() == 0 })
}

// TestAwaitDrain: Drain closes the awaited sockets at once (Gone(ErrClosed)) while it waits
// for the running pair, and Await during or after Drain is refused and closes its socket.
func TestAwaitDrain(t *testing.T) {
	r, done := testRelay(t, Config{Loops: 2})
	g := newRig(t)
	client, server := g.pipeline(t, r, nil, nil, "active")
	const n = 5
	aw := newAwaiter(t, nil)
	publics := make([]*net.TCPConn, n)
	for i := range publics {
		var fd int
		fd, publics[i] = awaitedConn(t, g.front)
		if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range publics {
		readN(t, p, len(greeting))
	}
	if r.Awaiting() != n || r.Pairs() != 1 {
		t.Fatalf("Awaiting() = %d, Pairs() = %d; want %d and 1", r.Awaiting(), r.Pairs(), n)
	}
	drained := async(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		return r.Drain(ctx)
	})
	for range n {
		if err := aw.waitGone(t); !errors.Is(err, ErrClosed) {
			t.Fatalf("Gone(%v), want ErrClosed", err)
		}
	}
	for i, p := range publics {
		if err := readEnd(p); isTimeout(err) {
			t.Fatalf("awaited socket %d still open during Drain", i)
		}
	}
	if r.Awaiting() != 0 {
		t.Fatalf("Awaiting() = %d during Drain", r.Awaiting())
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a pair still running", err)
	case <-time.After(50 * time.Millisecond):
	}
	fd, _ := awaitedConn(t, g.front)
	if err := r.Await(fd, greeting, testTimeout, aw); !errors.Is(err, ErrClosed) {
		t.Fatalf("Await during Drain: %v, want ErrClosed", err)
	}
	assertClosed(t, fd)

	atC, atS := exchange(t, client, server, []byte("still"), []byte("working"))
	if string(atC) != "working" || string(atS) != "still" {
		t.Fatalf("during Drain: client got %q, server got %q", atC, atS)
	}
	wait(t, "Drain", drained)
	if s := waitStats(t, done, 1)[0]; s.Reason != ReasonDone || s.Tag != "active" {
		t.Fatalf("stats %+v", s)
	}
	fd, public := awaitedConn(t, g.front)
	if err := r.Await(fd, greeting, testTimeout, aw); !errors.Is(err, ErrClosed) {
		t.Fatalf("Await after Drain: %v, want ErrClosed", err)
	}
	if err := readEnd(public); isTimeout(err) {
		t.Fatal("socket refused after Drain still open")
	}
	aw.noCalls(t, 20*time.Millisecond)
}

// TestAwaitClose: Close with awaited sockets outstanding (one maybe still queued) calls
// Gone(ErrClosed) for each, reports no pair, and leaves no descriptor open.
func TestAwaitClose(t *testing.T) {
	g := newRig(t)
	fdsBefore := fdSet(t)
	r, done := testRelay(t, Config{Loops: 2})
	aw := newAwaiter(t, nil)
	var publics []*net.TCPConn
	for range 4 {
		fd, p := awaitedConn(t, g.front)
		if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
			t.Fatal(err)
		}
		publics = append(publics, p)
	}
	fd, err := connectNB(g.front.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	publics = append(publics, accept(t, g.front))
	for _, p := range publics {
		readN(t, p, len(greeting))
	}
	fd, p := awaitedConn(t, g.front) // given right before Close: may never leave the queue
	if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	publics = append(publics, p)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for range publics {
		if err := aw.waitGone(t); !errors.Is(err, ErrClosed) {
			t.Fatalf("Gone(%v), want ErrClosed", err)
		}
	}
	aw.noCalls(t, 20*time.Millisecond)
	noMoreStats(t, done, 20*time.Millisecond)
	if r.Awaiting() != 0 || r.Pairs() != 0 {
		t.Fatalf("Awaiting() = %d, Pairs() = %d after Close", r.Awaiting(), r.Pairs())
	}
	for i, p := range publics {
		if err := readEnd(p); isTimeout(err) {
			t.Fatalf("awaited socket %d still open after Close", i)
		}
		_ = p.Close()
	}
	waitNoNewFDs(t, fdsBefore)
}

// TestAwaitRejectsBadInput: each bad argument gets its documented error, the descriptor is
// closed, and the Awaiter hears nothing.
func TestAwaitRejectsBadInput(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	aw := newAwaiter(t, nil)

	fd, _ := awaitedConn(t, g.front)
	if err := r.Await(fd, greeting, time.Second, nil); !errors.Is(err, ErrBadFD) {
		t.Errorf("Await with a nil Awaiter: %v, want ErrBadFD", err)
	}
	assertClosed(t, fd)
	for _, w := range []time.Duration{0, -time.Second} {
		fd, _ = awaitedConn(t, g.front)
		if err := r.Await(fd, greeting, w, aw); !errors.Is(err, ErrBadFD) {
			t.Errorf("Await with wait %v: %v, want ErrBadFD", w, err)
		}
		assertClosed(t, fd)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := r.Await(p[0], greeting, time.Second, aw); !errors.Is(err, ErrBadFD) {
		t.Errorf("Await(pipe): %v, want ErrBadFD", err)
	}
	assertClosed(t, p[0])
	_ = unix.Close(p[1])
	fd, public := awaitedConn(t, g.front)
	if err := r.Await(fd, make([]byte, MaxPrefix+1), time.Second, aw); !errors.Is(err, ErrPrefixTooLarge) {
		t.Errorf("Await with a %d-byte greeting: %v, want ErrPrefixTooLarge", MaxPrefix+1, err)
	}
	assertClosed(t, fd)
	if err := readEnd(public); err != nil {
		t.Errorf("public side of a refused Await: %v, want EOF", err)
	}
	aw.noCalls(t, 50*time.Millisecond)
	noMoreStats(t, done, 20*time.Millisecond)
	if r.Awaiting() != 0 || r.Pairs() != 0 {
		t.Fatalf("Awaiting() = %d, Pairs() = %d after refused Awaits", r.Awaiting(), r.Pairs())
	}
}

// TestAwaitCounts: Awaiting counts the waiting sockets, Pairs does not, pairing moves one from
// the first count to the second, and MaxPairs counts both.
func TestAwaitCounts(t *testing.T) {
	r, done := testRelay(t, Config{MaxPairs: 2})
	g := newRig(t)
	hello := []byte("hello")
	aw := newAwaiter(t, pairWhen(t, hello, "paired", func() (int, error) { return connectNB(g.back.Addr()) }))
	fd1, pub1 := awaitedConn(t, g.front)
	fd2, _ := awaitedConn(t, g.front)
	for _, fd := range []int{fd1, fd2} {
		if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
			t.Fatal(err)
		}
	}
	if r.Awaiting() != 2 || r.Pairs() != 0 {
		t.Fatalf("Awaiting() = %d, Pairs() = %d; want 2 and 0", r.Awaiting(), r.Pairs())
	}
	full := func(what string) {
		t.Helper()
		fd, public := awaitedConn(t, g.front)
		if err := r.Await(fd, greeting, testTimeout, aw); !errors.Is(err, ErrFull) {
			t.Fatalf("%s: Await %v, want ErrFull", what, err)
		}
		assertClosed(t, fd)
		if err := readEnd(public); isTimeout(err) {
			t.Fatal("refused socket still open")
		}
		_, _, a, b := g.rawFDs(t)
		if err := r.Add(a, b, nil, nil, nil); !errors.Is(err, ErrFull) {
			t.Fatalf("%s: Add %v, want ErrFull", what, err)
		}
	}
	full("two awaiting")

	readN(t, pub1, len(greeting))
	if _, err := pub1.Write(hello); err != nil {
		t.Fatal(err)
	}
	backend := accept(t, g.back)
	readN(t, backend, len(hello))
	eventually(t, "one awaiting, one pair", func() bool { return r.Awaiting() == 1 && r.Pairs() == 1 })
	full("one awaiting, one pair")

	exchange(t, pub1, backend, nil, nil)
	if s := waitStats(t, done, 1)[0]; s.Tag != "paired" || s.Reason != ReasonDone || s.AToB != int64(len(hello)) {
		t.Fatalf("stats %+v", s)
	}
	eventually(t, "the pair's place free", func() bool { return r.Pairs() == 0 })
	fd3, _ := awaitedConn(t, g.front)
	if err := r.Await(fd3, greeting, testTimeout, aw); err != nil {
		t.Fatalf("Await once a place is free: %v", err)
	}
	if r.Awaiting() != 2 || r.Pairs() != 0 {
		t.Fatalf("Awaiting() = %d, Pairs() = %d; want 2 and 0", r.Awaiting(), r.Pairs())
	}
}

// TestAwaitMany: 200 awaited sockets on two loops, each paired and relayed with a small echo,
// cost no goroutine and leave no descriptor behind.
func TestAwaitMany(t *testing.T) {
	const n = 200
	g := newRig(t)
	fdsBefore := fdSet(t)
	goroutinesBefore := runtime.NumGoroutine()
	r, done := testRelay(t, Config{Loops: 2})
	aw := newAwaiter(t, func(_ int, data []byte) (int, any, error) {
		var i int
		if len(data) < len("hello 000") {
			return -1, nil, ErrMore
		}
		if _, err := fmt.Sscanf(string(data), "hello %03d", &i); err != nil {
			t.Errorf("First got %q: %v", data, err)
			return -1, nil, err
		}
		fd, err := connectNB(g.back.Addr())
		return fd, i, err
	})
	publics := make([]*net.TCPConn, n)
	for i := range publics {
		var fd int
		fd, publics[i] = awaitedConn(t, g.front)
		if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
			t.Fatal(err)
		}
	}
	if r.Awaiting() != n || r.Pairs() != 0 {
		t.Fatalf("Awaiting() = %d, Pairs() = %d; want %d and 0", r.Awaiting(), r.Pairs(), n)
	}
	if g := runtime.NumGoroutine(); g > goroutinesBefore+r.Loops()+5 {
		t.Errorf("%d goroutines with %d sockets awaited, %d before the relay", g, n, goroutinesBefore)
	}
	for i, p := range publics {
		readN(t, p, len(greeting))
		if _, err := fmt.Fprintf(p, "hello %03d", i); err != nil {
			t.Fatal(err)
		}
	}
	backends := make([]*net.TCPConn, n)
	for range n {
		b := accept(t, g.back)
		var i int
		if _, err := fmt.Sscanf(string(readN(t, b, 9)), "hello %03d", &i); err != nil || i < 0 || i >= n || backends[i] != nil {
			t.Fatalf("backend got hello %d (%v)", i, err)
		}
		backends[i] = b
		if _, err := fmt.Fprintf(b, "echo  %03d", i); err != nil {
			t.Fatal(err)
		}
		_ = b.CloseWrite()
	}
	for i, p := range publics {
		if got, err := io.ReadAll(p); err != nil || string(got) != fmt.Sprintf("echo  %03d", i) {
			t.Fatalf("public %d got %q, %v", i, got, err)
		}
		_ = p.CloseWrite()
	}
	for i, b := range backends {
		if err := readEnd(b); err != nil {
			t.Fatalf("backend %d: %v", i, err)
		}
	}
	seen := make([]bool, n)
	for _, s := range waitStats(t, done, n) {
		i, ok := s.Tag.(int)
		if !ok || seen[i] || s.Reason != ReasonDone || s.AToB != 9 || s.BToA != 9 {
			t.Fatalf("stats %+v", s)
		}
		seen[i] = true
	}
	eventually(t, "no pairs left", func() bool { return r.Pairs() == 0 && r.Awaiting() == 0 })
	for i := range n {
		_ = publics[i].Close()
		_ = backends[i].Close()
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	waitNoNewFDs(t, fdsBefore)
	eventually(t, "goroutines back", func() bool { return runtime.NumGoroutine() <= goroutinesBefore+2 })
}

// TestAwaitFromFirst: a First that hands the relay a replacement socket with Await, on the very
// loop it runs on, as the private proxy refills its standby sockets, does not deadlock: the
// replacement is greeted and can be paired in turn.
func TestAwaitFromFirst(t *testing.T) {
	r, done := testRelay(t, Config{Loops: 1})
	g := newRig(t)
	hello := []byte("hello")
	var aw *testAwaiter
	replaced := make(chan error, 8)
	aw = newAwaiter(t, pairWhen(t, hello, "replaced", func() (int, error) {
		fd, err := connectNB(g.front.Addr())
		if err == nil {
			err = r.Await(fd, greeting, testTimeout, aw)
		}
		select {
		case replaced <- err:
		default:
		}
		return connectNB(g.back.Addr())
	}))
	fd, public := awaitedConn(t, g.front)
	if err := r.Await(fd, greeting, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	var backends []*net.TCPConn
	publics := []*net.TCPConn{public}
	for range 2 {
		readN(t, public, len(greeting))
		if _, err := public.Write(hello); err != nil {
			t.Fatal(err)
		}
		wait(t, "Await from First", replaced)
		public = accept(t, g.front) // the replacement
		backend := accept(t, g.back)
		if got := readN(t, backend, len(hello)); !bytes.Equal(got, hello) {
			t.Fatalf("backend got %q", got)
		}
		publics, backends = append(publics, public), append(backends, backend)
	}
	readN(t, public, len(greeting)) // the second replacement was greeted too
	if r.Awaiting() != 1 || r.Pairs() != 2 {
		t.Fatalf("Awaiting() = %d, Pairs() = %d; want 1 and 2", r.Awaiting(), r.Pairs())
	}
	for i, b := range backends {
		atP, atB := exchange(t, publics[i], b, []byte("up"), []byte("down"))
		if string(atP) != "down" || string(atB) != "up" {
			t.Fatalf("pair %d: public got %q, backend %q", i, atP, atB)
		}
	}
	for _, s := range waitStats(t, done, 2) {
		if s.Reason != ReasonDone || s.Tag != "replaced" || s.AToB != int64(len(hello)+2) || s.BToA != 4 {
			t.Fatalf("stats %+v", s)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.waitGone(t); !errors.Is(err, ErrClosed) {
		t.Fatalf("Gone(%v) for the last replacement, want ErrClosed", err)
	}
}

// Edge cases of the edge-triggered reads and of the deadline.

// waitRDHUP waits until fd has its peer's FIN queued behind whatever data came first, so that
// the relay's first look at fd sees both at once.
func waitRDHUP(t *testing.T, fd int) {
	t.Helper()
	waitPoll(t, fd, unix.POLLRDHUP, "the peer's FIN")
}

// waitPoll waits until fd reports events, what naming them in the failure.
func waitPoll(t *testing.T, fd int, events int16, what string) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	if n, err := unix.Poll(pfd, int(testTimeout/time.Millisecond)); n != 1 || err != nil {
		t.Fatalf("poll for %s: %d, %v", what, n, err)
	}
}

// TestAwaitHelloThenFIN: the peer's first message and its FIN arrive together. First pairs on
// the message; the backend must then see the message and EOF, as for a pair from Add. The
// edge that reported the FIN came with the data, so a relay that took the short read for a
// drained socket would never read side a's EOF, and the backend would wait (until the idle
// timeout) for a FIN the relay holds.
func TestAwaitHelloThenFIN(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	hello := []byte("hello")
	aw := newAwaiter(t, pairWhen(t, hello, "fin", func() (int, error) { return connectNB(g.back.Addr()) }))
	fd, public := awaitedConn(t, g.front)
	if _, err := public.Write(hello); err != nil {
		t.Fatal(err)
	}
	_ = public.CloseWrite()
	waitRDHUP(t, fd)
	if err := r.Await(fd, nil, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	backend := accept(t, g.back)
	if got, err := io.ReadAll(backend); err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("backend got %q, %v; want %q, then EOF", got, err, hello)
	}
	if _, err := backend.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	_ = backend.CloseWrite()
	if got, err := io.ReadAll(public); err != nil || string(got) != "bye" {
		t.Fatalf("public side got %q, %v", got, err)
	}
	if s := waitStats(t, done, 1)[0]; s.Reason != ReasonDone || s.AToB != int64(len(hello)) || s.BToA != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// TestAwaitPartialThenFIN: part of a message and the FIN arrive together; First asks for more,
// so Gone must report io.EOF. The FIN's edge came with the data: a relay that did not read
// again after ErrMore would hold the socket until its wait ended with ErrAwaitTimeout.
func TestAwaitPartialThenFIN(t *testing.T) {
	r, _ := testRelay(t, Config{})
	g := newRig(t)
	aw := newAwaiter(t, nil)
	fd, public := awaitedConn(t, g.front)
	if _, err := public.Write([]byte("hel")); err != nil {
		t.Fatal(err)
	}
	_ = public.CloseWrite()
	waitRDHUP(t, fd)
	if err := r.Await(fd, nil, testTimeout/2, aw); err != nil {
		t.Fatal(err)
	}
	if err := aw.waitGone(t); err != io.EOF {
		t.Fatalf("Gone(%v), want io.EOF", err)
	}
}

// TestAwaitLongWait: any positive wait is valid, and a very long one means "no timeout". The
// deadline is the loop clock plus wait: unless that sum is clamped, a wait near
// math.MaxInt64 overflows and the first sweep (about a second later) times the socket out.
func TestAwaitLongWait(t *testing.T) {
	r, _ := testRelay(t, Config{})
	g := newRig(t)
	aw := newAwaiter(t, nil)
	fd, _ := awaitedConn(t, g.front)
	if err := r.Await(fd, nil, time.Duration(1<<63-1), aw); err != nil {
		t.Fatal(err)
	}
	aw.noCalls(t, 2500*time.Millisecond) // past the first await sweep
	if r.Awaiting() != 1 {
		t.Fatalf("Awaiting() = %d", r.Awaiting())
	}
}

// TestAwaitTimeoutOnBusyLoop: on a loop that already holds an awaited socket and is kept busy by
// a pair streaming without pause, a new awaited socket gets its greeting, and is closed after its
// wait when its peer stays silent, while the first one stays held.
func TestAwaitTimeoutOnBusyLoop(t *testing.T) {
	r, _ := testRelay(t, Config{Loops: 1})
	g := newRig(t)
	held := newAwaiter(t, nil)
	fd, _ := awaitedConn(t, g.front)
	if err := r.Await(fd, nil, testTimeout, held); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first socket held", func() bool { return r.Awaiting() == 1 })

	client, server := g.pipeline(t, r, nil, nil, "busy")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		chunk := randomBytes(5, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := client.Write(chunk); err != nil {
				return
			}
		}
	}()
	go func() { _, _ = io.Copy(io.Discard, server) }()

	aw := newAwaiter(t, nil)
	fd, public := awaitedConn(t, g.front)
	start := time.Now()
	if err := r.Await(fd, greeting, 300*time.Millisecond, aw); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, public, len(greeting)); !bytes.Equal(got, greeting) {
		t.Fatalf("public side got %q, want the greeting", got)
	}
	if err := aw.waitGone(t); !errors.Is(err, ErrAwaitTimeout) {
		t.Fatalf("Gone(%v), want ErrAwaitTimeout", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("closed after %v, before its wait of 300ms", waited)
	}
	if r.Awaiting() != 1 {
		t.Fatalf("Awaiting() = %d, want the first socket still held", r.Awaiting())
	}
	held.noCalls(t, 20*time.Millisecond)
}

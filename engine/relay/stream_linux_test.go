package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBulkHalfClose sends bulkSize bytes each way, one way after the other:
// the client writes and half-closes, the server reads to EOF, then writes its own
// bulkSize and closes, and the client reads to EOF. Both streams must arrive
// intact (SHA-256) and be counted exactly.
func TestBulkHalfClose(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	client, server := g.pipeline(t, r, nil, nil, "bulk")

	var clientSent, serverSent, clientGot, serverGot [32]byte
	var clientN, serverN int64
	clientSide := async(func() error {
		var err error
		if clientSent, err = sendStream(client, 1, bulkSize); err != nil {
			return fmt.Errorf("client send: %w", err)
		}
		if err := client.CloseWrite(); err != nil {
			return err
		}
		if clientN, clientGot, err = recvStream(client); err != nil {
			return fmt.Errorf("client receive: %w", err)
		}
		return nil
	})
	serverSide := async(func() error {
		var err error
		if serverN, serverGot, err = recvStream(server); err != nil {
			return fmt.Errorf("server receive: %w", err)
		}
		if serverSent, err = sendStream(server, 2, bulkSize); err != nil {
			return fmt.Errorf("server send: %w", err)
		}
		return server.Close()
	})
	wait(t, "client", clientSide)
	wait(t, "server", serverSide)

	if serverN != bulkSize || serverGot != clientSent {
		t.Errorf("a to b: server got %d bytes (sha %x), client sent %d (sha %x)", serverN, serverGot[:8], bulkSize, clientSent[:8])
	}
	if clientN != bulkSize || clientGot != serverSent {
		t.Errorf("b to a: client got %d bytes (sha %x), server sent %d (sha %x)", clientN, clientGot[:8], bulkSize, serverSent[:8])
	}
	s := waitStats(t, done, 1)[0]
	if s.Reason != ReasonDone || s.AToB != bulkSize || s.BToA != bulkSize || s.Tag != "bulk" {
		t.Errorf("stats %+v", s)
	}
	if n := r.PipesInUse(); n != 0 {
		t.Errorf("PipesInUse() = %d after the pair finished", n)
	}
}

// TestHalfCloseOrders: whichever side half-closes first, its peer sees EOF while
// the other direction keeps working, and the pair ends "done" when both have.
func TestHalfCloseOrders(t *testing.T) {
	for _, first := range []string{"client", "server"} {
		t.Run(first+" first", func(t *testing.T) {
			r, done := testRelay(t, Config{})
			g := newRig(t)
			client, server := g.pipeline(t, r, nil, nil, nil)
			closer, peer := client, server
			if first == "server" {
				closer, peer = server, client
			}
			if _, err := closer.Write([]byte("last words")); err != nil {
				t.Fatal(err)
			}
			if err := closer.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(peer) // ends only on the relayed FIN
			if err != nil || string(got) != "last words" {
				t.Fatalf("peer read %q, %v; want \"last words\" then EOF", got, err)
			}
			// The other direction is still open, in both sockets of the relay.
			for i := range 3 {
				msg := fmt.Sprintf("reply %d", i)
				if _, err := peer.Write([]byte(msg)); err != nil {
					t.Fatalf("peer write after half-close: %v", err)
				}
				buf := make([]byte, len(msg))
				if _, err := io.ReadFull(closer, buf); err != nil || string(buf) != msg {
					t.Fatalf("closer read %q, %v; want %q", buf, err, msg)
				}
			}
			noMoreStats(t, done, 50*time.Millisecond)
			if err := peer.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if rest, err := io.ReadAll(closer); err != nil || len(rest) != 0 {
				t.Fatalf("closer read %q, %v; want EOF", rest, err)
			}
			s := waitStats(t, done, 1)[0]
			want := int64(len("last words"))
			other := int64(3 * len("reply 0"))
			if first == "server" {
				want, other = other, want
			}
			if s.Reason != ReasonDone || s.AToB != want || s.BToA != other {
				t.Fatalf("stats %+v, want done with AToB %d BToA %d", s, want, other)
			}
		})
	}
}

// TestResetClosesOtherSide: an RST from either end makes the relay drop the pair
// at once, and the other end sees its connection end without having to wait.
func TestResetClosesOtherSide(t *testing.T) {
	for _, who := range []string{"client", "server"} {
		t.Run(who, func(t *testing.T) {
			r, done := testRelay(t, Config{})
			g := newRig(t)
			client, server := g.pipeline(t, r, nil, nil, nil)
			// Make sure the pair is running before the reset.
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(server, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			resetter, other := client, server
			if who == "server" {
				resetter, other = server, client
			}
			_ = resetter.SetLinger(0) // close sends RST
			_ = resetter.Close()
			// The relay passes the failure on as a reset, not as a clean EOF
			// that would make a cut-off stream look complete.
			if err := readEnd(other); err == nil || isTimeout(err) {
				t.Fatalf("other side: read ended with %v, want a connection reset", err)
			}
			s := waitStats(t, done, 1)[0]
			var pe *PairError
			if s.Reason != ReasonFailed || !errors.As(s.Err, &pe) {
				t.Fatalf("ended with %v (err %v), want ReasonFailed with a *PairError", s.Reason, s.Err)
			}
			// The reset arrived on the resetter's socket: a is the client's, b the server's.
			if side := map[string]string{"client": "a", "server": "b"}[who]; pe.Side != side ||
				!errors.Is(s.Err, unix.ECONNRESET) && !errors.Is(s.Err, unix.EPIPE) {
				t.Fatalf("error %v, want a reset on side %s", s.Err, side)
			}
			t.Logf("error: %v", s.Err)
		})
	}
}

// TestIdleTimeout: a pair that moves nothing is closed with Reason "idle", while
// a pair that keeps trickling bytes is not.
func TestIdleTimeout(t *testing.T) {
	const idle = 500 * time.Millisecond
	r, done := testRelay(t, Config{IdleTimeout: idle})
	g := newRig(t)
	idleClient, idleServer := g.pipeline(t, r, nil, nil, "idle")
	busyClient, busyServer := g.pipeline(t, r, nil, nil, "busy")
	if _, err := idleClient.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(idleServer, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	// A byte every idle/20 keeps busy alive until the idle pair is gone.
	var stop atomic.Bool
	trickle := async(func() error {
		buf := make([]byte, 1)
		for !stop.Load() {
			if _, err := busyClient.Write(buf); err != nil {
				return err
			}
			if _, err := io.ReadFull(busyServer, buf); err != nil {
				return err
			}
			time.Sleep(idle / 20)
		}
		return nil
	})
	s := waitStats(t, done, 1)[0]
	stop.Store(true)
	wait(t, "busy pair", trickle)
	if s.Tag != "idle" || s.Reason != ReasonIdle {
		t.Fatalf("first pair to end: %+v, want the idle pair with reason idle", s)
	}
	if err := readEnd(idleClient); isTimeout(err) {
		t.Fatal("idle client still open")
	}
	if n := r.Pairs(); n != 1 {
		t.Fatalf("Pairs() = %d, want the busy pair left", n)
	}
	// Once the busy pair stops, it goes idle too.
	s = waitStats(t, done, 1)[0]
	if s.Tag != "busy" || s.Reason != ReasonIdle {
		t.Fatalf("second: %+v", s)
	}
}

// TestBackpressure: a receiver that stops reading must stall the sender (its
// writes stop completing) instead of the relay buffering, with at most one pipe
// held; once the receiver drains, every byte arrives.
func TestBackpressure(t *testing.T) {
	const total = 64 << 20
	for _, dc := range dataConfigs[:2] {
		t.Run(dc.name, func(t *testing.T) {
			r, done := testRelay(t, dc.cfg)
			g := newRig(t)
			client, a, b, server := g.conns(t)
			// Fixed buffer sizes turn off the kernel's autotuning (which may grow
			// each buffer to many MiB), so what the kernel can hold is known and
			// anything beyond it would have to be the relay's.
			const bufSize = 256 << 10
			kernel := 0
			for _, sb := range []struct {
				c   *net.TCPConn
				opt int
			}{{client, unix.SO_SNDBUF}, {a, unix.SO_RCVBUF}, {b, unix.SO_SNDBUF}, {server, unix.SO_RCVBUF}} {
				kernel += setBuffer(t, sb.c, sb.opt, bufSize)
			}
			if err := r.AddConns(a, b, nil, nil, nil); err != nil {
				t.Fatal(err)
			}

			var sent atomic.Int64
			counting := writerFunc(func(p []byte) (int, error) {
				n, err := client.Write(p)
				sent.Add(int64(n))
				return n, err
			})
			var sum [32]byte
			sender := async(func() error {
				var err error
				if sum, err = sendStream(counting, 3, total); err != nil {
					return err
				}
				return client.CloseWrite()
			})

			// Wait until the sender's progress stops: unchanged over five polls.
			stalledAt, same := int64(-1), 0
			for deadline := time.Now().Add(testTimeout); same < 5; {
				if time.Now().After(deadline) {
					t.Fatal("sender never stalled")
				}
				time.Sleep(50 * time.Millisecond)
				if n := sent.Load(); n == stalledAt {
					same++
				} else {
					stalledAt, same = n, 0
				}
				if stalledAt == total {
					t.Fatal("the relay took all 64 MiB from a receiver that reads nothing")
				}
			}
			// The kernel's buffers, one pipe, and as much again for the kernel's
			// accounting slack: still a small fraction of what was offered.
			bound := int64(2*kernel + DefaultPipeSize)
			t.Logf("sender stalled after %d KiB; socket buffers %d KiB", stalledAt>>10, kernel>>10)
			if stalledAt > bound {
				t.Errorf("%d KiB in flight, more than socket buffers plus a pipe allow (%d KiB)", stalledAt>>10, bound>>10)
			}
			if n := r.PipesInUse(); n > 1 {
				t.Errorf("PipesInUse() = %d with one stalled direction", n)
			}

			n, got, err := recvStream(server)
			if err != nil {
				t.Fatal(err)
			}
			wait(t, "sender", sender)
			if n != total || got != sum {
				t.Fatalf("server got %d bytes (sha %x), want %d (sha %x)", n, got[:8], total, sum[:8])
			}
			_ = server.CloseWrite()
			s := waitStats(t, done, 1)[0]
			if s.Reason != ReasonDone || s.AToB != total {
				t.Fatalf("stats %+v", s)
			}
			if n := r.PipesInUse(); n != 0 {
				t.Errorf("PipesInUse() = %d after the pair finished", n)
			}
		})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// setBuffer sets a socket buffer size (which also stops its autotuning) and
// returns the size the kernel actually uses (it doubles the request for
// bookkeeping).
func setBuffer(t *testing.T, c *net.TCPConn, opt, size int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size); serr == nil {
			got, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return got
}

// TestFinTimeout: once one side has finished sending, a pair whose other side stays silent is
// closed after FinTimeout even when there is no idle timeout; a quiet pair with both sides open
// is left alone.
func TestFinTimeout(t *testing.T) {
	const fin = 300 * time.Millisecond
	r, done := testRelay(t, Config{FinTimeout: fin})
	g := newRig(t)
	halfClient, halfServer := g.pipeline(t, r, nil, nil, "half")
	openClient, _ := g.pipeline(t, r, nil, nil, "open")
	if err := halfClient.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The server sees the client's end of stream but never answers or closes.
	if err := readEnd(halfServer); isTimeout(err) {
		t.Fatal("the half-close did not reach the server")
	}
	s := waitStats(t, done, 1)[0]
	if s.Tag != "half" || s.Reason != ReasonFinIdle {
		t.Fatalf("first pair to end: %+v, want the half-closed pair with reason %q", s, ReasonFinIdle)
	}
	if err := readEnd(halfClient); isTimeout(err) {
		t.Fatal("half-closed client still open after FinTimeout")
	}
	time.Sleep(2 * fin)
	if n := r.Pairs(); n != 1 {
		t.Fatalf("Pairs() = %d, want the open pair left: FinTimeout must not touch it", n)
	}
	_ = openClient
}

// TestSetTimeoutsReachesRelayedPairs: a pair relayed while the idle timeout is off is closed
// once SetTimeouts turns it on.
func TestSetTimeoutsReachesRelayedPairs(t *testing.T) {
	r, done := testRelay(t, Config{})
	g := newRig(t)
	client, _ := g.pipeline(t, r, nil, nil, "quiet")
	if err := r.SetTimeouts(-1, 0); err == nil {
		t.Fatal("a negative timeout was taken")
	}
	if err := r.SetTimeouts(50*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	s := waitStats(t, done, 1)[0]
	if s.Tag != "quiet" || s.Reason != ReasonIdle {
		t.Fatalf("after SetTimeouts: %+v, want the quiet pair closed as idle", s)
	}
	if err := readEnd(client); isTimeout(err) {
		t.Fatal("client still open")
	}
}

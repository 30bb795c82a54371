package relay

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// configs run the data tests through each way the relay can move bytes.
var dataConfigs = []struct {
	name string
	cfg  Config
}{
	{"splice", Config{}},
	{"copy", Config{MaxPipes: -1}},                            // no pipes: bounded copy only
	{"scarce", Config{Loops: 1, MaxPipes: 1, PipeSize: 4096}}, // pairs mix splice and copy, small chunks
}

// halfCloser is a stream connection that can half-close (TCP or Unix).
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// exchange runs both directions of one pipeline at once: each side writes its
// data then half-closes, and reads everything the other side sends. It returns
// what client and server received.
func exchange(t *testing.T, client, server halfCloser, fromClient, fromServer []byte) (atClient, atServer []byte) {
	t.Helper()
	write := func(c halfCloser, p []byte) func() error {
		return func() error {
			if _, err := c.Write(p); err != nil {
				return err
			}
			return c.CloseWrite()
		}
	}
	var gotC, gotS []byte
	read := func(c halfCloser, dst *[]byte) func() error {
		return func() error {
			var err error
			*dst, err = io.ReadAll(c)
			return err
		}
	}
	chs := []<-chan error{
		async(write(client, fromClient)), async(write(server, fromServer)),
		async(read(client, &gotC)), async(read(server, &gotS)),
	}
	for i, ch := range chs {
		wait(t, fmt.Sprintf("exchange step %d", i), ch)
	}
	return gotC, gotS
}

// unixPair returns the two ends of a Unix stream socket pair: mine for the test, with the
// test deadline and closed at cleanup, and a descriptor for the relay.
func unixPair(t testing.TB) (mine halfCloser, relays int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "unix")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return c.(halfCloser), fds[1]
}

func TestRelayBytesExactBothWays(t *testing.T) {
	sizes := []int{0, 1, 1000, 4095, 4096, 65535, 65536, 65537, 300_000, 1 << 20}
	for _, dc := range dataConfigs {
		t.Run(dc.name, func(t *testing.T) {
			r, done := testRelay(t, dc.cfg)
			g := newRig(t)
			rng := rand.New(rand.NewPCG(1, uint64(len(dc.name))))
			type job struct {
				client, server *net.TCPConn
				toA, toB, c, s []byte
			}
			var jobs []job
			for i, n := range sizes {
				j := job{
					c: randomBytes(uint64(2*i), n),
					s: randomBytes(uint64(2*i+1), sizes[len(sizes)-1-i]+rng.IntN(100)),
				}
				if i%3 != 0 { // some pairs without prefixes
					j.toA = randomBytes(uint64(100+i), 1+rng.IntN(17<<10))
					j.toB = randomBytes(uint64(200+i), 1+rng.IntN(17<<10))
				}
				j.client, j.server = g.pipeline(t, r, j.toA, j.toB, i)
				jobs = append(jobs, j)
			}
			// All pairs at once, so they share loops and pipes.
			errs := make(chan error, len(jobs))
			for _, j := range jobs {
				go func() {
					atC, atS := exchange(t, j.client, j.server, j.c, j.s)
					switch {
					case !bytes.Equal(atS, append(bytes.Clone(j.toB), j.c...)):
						errs <- fmt.Errorf("server got %d bytes, want toB (%d) + client's %d", len(atS), len(j.toB), len(j.c))
					case !bytes.Equal(atC, append(bytes.Clone(j.toA), j.s...)):
						errs <- fmt.Errorf("client got %d bytes, want toA (%d) + server's %d", len(atC), len(j.toA), len(j.s))
					default:
						errs <- nil
					}
				}()
			}
			for range jobs {
				wait(t, "pair", errs)
			}
			stats := waitStats(t, done, len(jobs))
			seen := map[any]bool{}
			for _, s := range stats {
				if seen[s.Tag] {
					t.Fatalf("pair %v reported twice", s.Tag)
				}
				seen[s.Tag] = true
				j := jobs[s.Tag.(int)]
				if s.Reason != ReasonDone {
					t.Errorf("pair %v: reason %q, want %q", s.Tag, s.Reason, ReasonDone)
				}
				if want := int64(len(j.toB) + len(j.c)); s.AToB != want {
					t.Errorf("pair %v: AToB %d, want %d", s.Tag, s.AToB, want)
				}
				if want := int64(len(j.toA) + len(j.s)); s.BToA != want {
					t.Errorf("pair %v: BToA %d, want %d", s.Tag, s.BToA, want)
				}
			}
			if n := r.Pairs(); n != 0 {
				t.Errorf("Pairs() = %d after all finished", n)
			}
		})
	}
}

// TestPrefixBeforeEarlyData: the client's bytes are already waiting in the relay's
// socket when the pair is added, and b's send buffer is already full, so the relay
// must deliver the prefix in pieces on EPOLLOUT and only then move the client's
// bytes.
func TestPrefixBeforeEarlyData(t *testing.T) {
	for _, dc := range dataConfigs {
		t.Run(dc.name, func(t *testing.T) {
			r, done := testRelay(t, dc.cfg)
			g := newRigMSS(t, 1400)
			client, a, b, server := g.conns(t)
			_ = b.SetWriteBuffer(4096)
			_ = server.SetReadBuffer(4096)
			// Fill b until its writes stop completing (the deadline only ends the
			// filling; how much fits does not matter, only that b is full).
			_ = b.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			filler := randomBytes(6, 4<<20)
			n, err := b.Write(filler)
			if !isTimeout(err) {
				t.Fatalf("filling b: wrote %d of %d, err %v; want a timeout", n, len(filler), err)
			}
			_ = b.SetWriteDeadline(time.Time{})
			filler = filler[:n]

			early := randomBytes(7, 100_000)
			if _, err := client.Write(early[:1000]); err != nil {
				t.Fatal(err)
			}
			toB := randomBytes(8, 17<<10)
			toA := []byte("server-first")
			if err := r.AddConns(a, b, toA, toB, nil); err != nil {
				t.Fatal(err)
			}
			clear(toB) // the caller may reuse its buffer at once: Add copied it
			want := slices.Concat(filler, randomBytes(8, 17<<10), early)
			atC, atS := exchange(t, client, server, early[1000:], nil)
			if !bytes.Equal(atS, want) {
				t.Fatalf("server got %d bytes, want filler (%d), prefix (%d), client data (%d) in order",
					len(atS), len(filler), 17<<10, len(early))
			}
			if string(atC) != "server-first" {
				t.Fatalf("client got %q", atC)
			}
			s := waitStats(t, done, 1)[0]
			if s.Reason != ReasonDone || s.AToB != int64(17<<10+len(early)) || s.BToA != int64(len(toA)) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestUnixStreamSockets: the relay works on any stream socket, not only TCP.
func TestUnixStreamSockets(t *testing.T) {
	for _, dc := range dataConfigs[:2] {
		t.Run(dc.name, func(t *testing.T) {
			r, done := testRelay(t, dc.cfg)
			client, a := unixPair(t)
			server, b := unixPair(t)
			if err := r.Add(a, b, []byte("A:"), []byte("B:"), nil); err != nil {
				t.Fatal(err)
			}
			fromClient, fromServer := randomBytes(10, 300_000), randomBytes(11, 200_000)
			atC, atS := exchange(t, client, server, fromClient, fromServer)
			if !bytes.Equal(atS, append([]byte("B:"), fromClient...)) || !bytes.Equal(atC, append([]byte("A:"), fromServer...)) {
				t.Fatalf("client got %d bytes, server %d", len(atC), len(atS))
			}
			if s := waitStats(t, done, 1)[0]; s.Reason != ReasonDone {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

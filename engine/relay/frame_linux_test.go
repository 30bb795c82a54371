package relay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Framed sockets (AddFramed, AwaitFramed, Keeper) over real loopback TCP: a framed socket carries
// one stream after another and goes back to its Keeper after each clean end; anything that is not
// a frame fails the pair.

// endWait bounds a wait for a connection the relay should end at once (a reset or a FIN): long
// enough for any loaded machine, short enough that a hang fails the test quickly.
const endWait = 10 * time.Second

// chanKeeper is a Keeper that reports each call on kept (a socket, or -1 for a pair that ended
// without one to keep), then calls then (if not nil). Unless then takes the socket over (passOn),
// the test owns it once it is on kept, and cleanup closes those the test did not take. Keep runs
// on a loop: it never blocks.
type chanKeeper struct {
	kept     chan int
	then     func(fd int)
	overflow atomic.Int64
}

func newKeeper(t testing.TB, then func(fd int), passOn bool) *chanKeeper {
	k := &chanKeeper{kept: make(chan int, 64), then: then}
	t.Cleanup(func() {
		if n := k.overflow.Load(); n > 0 {
			t.Errorf("Keeper channel overflowed by %d", n)
		}
		for !passOn {
			select {
			case fd := <-k.kept:
				if fd >= 0 {
					_ = unix.Close(fd)
				}
			default:
				return
			}
		}
	})
	return k
}

func (k *chanKeeper) Keep(fd int) {
	select {
	case k.kept <- fd:
	default:
		k.overflow.Add(1)
	}
	if k.then != nil {
		k.then(fd)
	}
}

// noKeep checks that k has heard of nothing (more).
func (k *chanKeeper) noKeep(t testing.TB) {
	t.Helper()
	select {
	case fd := <-k.kept:
		t.Errorf("unexpected Keep(%d)", fd)
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	default:
	}
}

// closedNotKept checks that k heard of its pair exactly once, with Keep(-1): the pair ended some
// other way than an end frame each way, and the relay closed the socket.
func (k *chanKeeper) closedNotKept(t testing.TB) {
	t.Helper()
	if fd := next(t, "Keep", k.kept); fd != -1 {
		t.Errorf("Keep(%d) (socket %s), want Keep(-1): the socket closed, not kept", fd, socketID(t, fd))
		_ = unix.Close(fd)
	}
	k.noKeep(t)
}

// keepingAwaiter is a testAwaiter whose Pairings hand the awaited socket back to keep.
type keepingAwaiter struct {
	*testAwaiter
	keep Keeper
}

func (a keepingAwaiter) First(fd int, data []byte) (Pairing, error) {
	pg, err := a.testAwaiter.First(fd, data)
	pg.Keep = a.keep
	return pg, err
}

// socketID names the socket behind fd ("socket:[12345]"): unlike the number, the name is not
// reused for another socket.
func socketID(t testing.TB, fd int) string {
	t.Helper()
	id, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return fmt.Sprintf("fd %d: %v", fd, err)
	}
	return id
}

// checkFDsAtEnd makes the test fail if a descriptor opened from now on is still open after every
// cleanup registered later (relays closed, conns closed) has run.
func checkFDsAtEnd(t *testing.T) {
	before := fdSet(t)
	t.Cleanup(func() { waitNoNewFDs(t, before) })
}

// framedPair adds a pair whose b is a raw socket on which the test plays the framed peer: client
// is a's peer, peer is b's.
func framedPair(t *testing.T, r *Relay, g *rig, toB []byte, tag any, k Keeper) (client, peer *net.TCPConn) {
	t.Helper()
	cliFD, client := awaitedConn(t, g.front)
	peerFD, peer := awaitedConn(t, g.front)
	if err := r.AddFramed(cliFD, peerFD, nil, toB, tag, k); err != nil {
		t.Fatalf("AddFramed: %v", err)
	}
	return client, peer
}

// readFrames reads, as a framed peer, data frames carrying exactly want and then, if end, an end
// frame; it fails the test on anything else. It reads no byte past them.
func readFrames(t *testing.T, c *net.TCPConn, want []byte, end bool) {
	t.Helper()
	var got []byte
	hdr := make([]byte, FrameHeader)
	for len(got) < len(want) || end {
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatalf("framed peer: %v after %d of %d payload bytes", err, len(got), len(want))
		}
		kind, size := hdr[0], int(hdr[1])<<16|int(hdr[2])<<8|int(hdr[3])
		switch {
		case kind == FrameEnd && size == 0 && end && len(got) == len(want):
			end = false
		case kind == FrameData && size > 0 && len(got)+size <= len(want):
			p := make([]byte, size)
			if _, err := io.ReadFull(c, p); err != nil {
				t.Fatalf("framed peer: %v inside a frame of %d bytes", err, size)
			}
			if !bytes.Equal(p, want[len(got):len(got)+size]) {
				t.Fatalf("framed peer: payload bytes %d to %d differ", len(got), len(got)+size)
			}
			got = append(got, p...)
		default:
			t.Fatalf("framed peer: header %x after %d of %d payload bytes (end frame wanted: %v)", hdr, len(got), len(want), end)
		}
	}
}

// expectEnd checks that c is ended (EOF or reset) within endWait, rather than left open.
func expectEnd(t *testing.T, what string, c *net.TCPConn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(endWait))
	if err := readEnd(c); isTimeout(err) {
		t.Errorf("%s: connection still open %v after the pair ended", what, endWait)
	}
}

// expectEOF checks that c reads no more bytes and then a clean EOF.
func expectEOF(t *testing.T, what string, c *net.TCPConn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(endWait))
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("%s: read %q, %v; want EOF", what, rest, err)
	}
}

// chainSession is one client's session over the link: up bytes from the client to the server
// after the hello, down bytes back, and who half-closes first ("client", "server", or "both"
// streaming at once).
type chainSession struct {
	name     string
	up, down int64
	first    string
}

const chainBulk = 4 << 20

var chainSessions = []chainSession{
	{"tiny, client ends first", 5, 7, "client"},
	{"bulk both ways at once", chainBulk, chainBulk, "both"},
	{"tiny, server ends first", 3, 11, "server"},
	{"hello only, server ends first", 0, 1, "server"},
	{"bulk, server ends first", chainBulk, 1 << 20, "server"},
	{"bulk, client ends first", 1 << 20, chainBulk, "client"},
	{"nothing back, client ends first", 1, 0, "client"},
}

// TestFramedChainManySessionsOneLink is the use framed sockets exist for: a public relay P and
// a private relay Q joined by one TCP connection, the link, which carries one client's session
// after another. For each session P pairs a new client with the link (AddFramed, the hello
// framed ahead of the client's bytes); Q holds the link with AwaitFramed, and its Awaiter pairs
// it with a new server connection on the hello and re-awaits it from Pairing.Keep. Every
// session's bytes must arrive intact both ways with each half-close passed on, both pairs must
// end done with the link kept and the bytes counted alike, and the link that comes back must be
// the same socket every time. Each data path on both relays (splice, copy only, scarce pipes,
// pipes of MinPipeSize: frames of many pipefuls), and relays that frame differently: one writes
// large frames by splice that the other reads 4 KiB at a time by copy, and the other way round.
// "from Keep": P's Keeper pairs the returned link with the next client itself, on the loop, so
// the next hello follows P's end frame at once. "four loops": a link given back from Keep stays
// on the loop that kept it (its epoll registration is re-pointed, not removed and added again):
// every session of Q's, and with "from Keep" every one of P's, is served by one loop.
func TestFramedChainManySessionsOneLink(t *testing.T) {
	small := Config{PipeSize: MinPipeSize}
	copySmall := Config{MaxPipes: -1, PipeSize: MinPipeSize}
	configs := []chainConfig{
		{"min pipes", small, small, false},
		{"P splice, Q copy small", Config{}, copySmall, false},
		{"P copy small, Q splice", copySmall, Config{}, false},
		{"from Keep", Config{}, Config{}, true},
		{"from Keep, copy small", copySmall, copySmall, true},
		{"four loops", Config{Loops: 4}, Config{Loops: 4}, false},
		{"four loops, from Keep", Config{Loops: 4}, Config{Loops: 4}, true},
	}
	for _, dc := range dataConfigs {
		configs = append(configs, chainConfig{dc.name, dc.cfg, dc.cfg, false})
	}
	for ci, c := range configs {
		t.Run(c.name, func(t *testing.T) { testFramedChain(t, c, uint64(ci)*100) })
	}
}

// chainConfig configures the relays of a chain, and whether P's Keeper starts the next session.
type chainConfig struct {
	name     string
	p, q     Config
	fromKeep bool
}

// chainJob is a session for P's Keeper to start on the link it gets back.
type chainJob struct {
	cli   int
	hello []byte
	tag   int
}

func testFramedChain(t *testing.T, cc chainConfig, seed uint64) {
	pcfg, qcfg := cc.p, cc.q
	g := newRig(t)
	checkFDsAtEnd(t)
	var pDoneCalls atomic.Int64
	pcfg.OnDone = func(Stats) { pDoneCalls.Add(1) }
	P, pDone := testRelay(t, pcfg)
	Q, qDone := testRelay(t, qcfg)

	// The link: the private proxy dials the public one.
	privFD, pubConn := awaitedConn(t, g.front)
	pubFD, err := dupConn(pubConn)
	if err != nil {
		t.Fatal(err)
	}
	pubID, privID := socketID(t, pubFD), socketID(t, privFD)

	jobs := make(chan chainJob, 1)
	var pKeeper *chanKeeper
	var pKeeps atomic.Int64
	pKeeper = newKeeper(t, func(fd int) {
		if n := pKeeps.Add(1); pDoneCalls.Load() < n {
			t.Errorf("P's Keep #%d ran before its OnDone", n)
		}
		if fd < 0 {
			return
		}
		select {
		case j := <-jobs:
			if err := P.AddFramed(j.cli, fd, nil, j.hello, j.tag, pKeeper); err != nil {
				t.Errorf("P: AddFramed from Keep: %v", err)
			}
		default:
		}
	}, cc.fromKeep)
	var qAw keepingAwaiter
	qKeeper := newKeeper(t, func(fd int) {
		if fd < 0 {
			return // the session failed: the test reports it
		}
		if err := Q.AwaitFramed(fd, nil, testTimeout, qAw); err != nil {
			t.Errorf("Q: AwaitFramed of the kept link: %v", err)
		}
	}, true)
	qAw = keepingAwaiter{newAwaiter(t, func(fd int, data []byte) (int, any, error) {
		if fd != privFD {
			t.Errorf("Q's First got fd %d, want the link's %d", fd, privFD)
		}
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			if !bytes.HasPrefix([]byte("hello "), data[:min(len(data), 6)]) {
				t.Errorf("Q's First got %q, want a hello", data)
				return -1, nil, errors.New("not a hello")
			}
			return -1, nil, ErrMore
		}
		i, err := strconv.Atoi(string(bytes.TrimPrefix(data[:end], []byte("hello "))))
		if err != nil {
			t.Errorf("Q's First got %q, want a hello", data)
			return -1, nil, err
		}
		peer, err := connectNB(g.back.Addr())
		return peer, i, err
	}), qKeeper}
	if err := Q.AwaitFramed(privFD, nil, testTimeout, qAw); err != nil {
		t.Fatal(err)
	}

	link := pubFD
	helloOf := func(i int) []byte { return fmt.Appendf(nil, "hello %d\n", i) }
	firstLoop := map[string]int{} // the loop of each relay's first session
	var nextClient *net.TCPConn   // from Keep: the client P's Keeper pairs next
	for i, s := range chainSessions {
		hello := helloOf(i)
		client := nextClient
		if client == nil {
			var cliFD int
			cliFD, client = awaitedConn(t, g.front)
			if err := P.AddFramed(cliFD, link, nil, hello, i, pKeeper); err != nil {
				t.Fatalf("session %d: AddFramed: %v", i, err)
			}
		}
		nextClient = nil
		if cc.fromKeep && i+1 < len(chainSessions) {
			var cliFD int
			cliFD, nextClient = awaitedConn(t, g.front)
			jobs <- chainJob{cliFD, helloOf(i + 1), i + 1}
		}
		server := accept(t, g.back)
		runSession(t, i, client, server, hello, s, seed+uint64(2*i))
		_ = client.Close()
		_ = server.Close()

		want := Stats{Reason: ReasonDone, Tag: i, Kept: true, AToB: int64(len(hello)) + s.up, BToA: s.down}
		for _, side := range []struct {
			name string
			done <-chan Stats
		}{{"P", pDone}, {"Q", qDone}} {
			st := next(t, side.name+"'s OnDone", side.done)
			if i == 0 {
				firstLoop[side.name] = st.Loop
			} else if (side.name == "Q" || cc.fromKeep) && st.Loop != firstLoop[side.name] {
				t.Errorf("session %d: %s served it on loop %d, the link's first session on loop %d: a link given back from Keep should stay on its loop", i, side.name, st.Loop, firstLoop[side.name])
			}
			st.Loop = 0
			if st != want {
				t.Errorf("session %d (%s): %s's stats %+v, want %+v", i, s.name, side.name, st, want)
			}
		}
		link = next(t, "P's Keep", pKeeper.kept)
		if id := socketID(t, link); link != pubFD || id != pubID {
			t.Fatalf("session %d: P kept fd %d (%s), want the link's fd %d (%s)", i, link, id, pubFD, pubID)
		}
		fd := next(t, "Q's Keep", qKeeper.kept)
		if id := socketID(t, fd); fd != privFD || id != privID {
			t.Fatalf("session %d: Q kept fd %d (%s), want the link's fd %d (%s)", i, fd, id, privFD, privID)
		}
		if nextClient == nil {
			eventually(t, "Q awaiting the link again", func() bool { return Q.Awaiting() == 1 && Q.Pairs() == 0 })
			if n := P.Pairs(); n != 0 {
				t.Errorf("session %d: P.Pairs() = %d after the session", i, n)
			}
		}
	}

	// The public side hangs up the link: Q's Awaiter hears of it, and nothing else happens.
	_ = unix.Close(link)
	if err := qAw.waitGone(t); err != io.EOF {
		t.Fatalf("Q's Gone(%v) after the link closed, want io.EOF", err)
	}
	noMoreStats(t, pDone, 20*time.Millisecond)
	noMoreStats(t, qDone, 20*time.Millisecond)
	pKeeper.noKeep(t)
	qKeeper.noKeep(t)
}

// runSession plays session i between client (P's a) and server (Q's b): the server gets the
// hello first, then the client's s.up bytes; the client gets the server's s.down bytes; each
// side half-closes after its stream, in the order s.first says, and reads the other's to EOF.
func runSession(t *testing.T, i int, client, server *net.TCPConn, hello []byte, s chainSession, seed uint64) {
	t.Helper()
	var upSent, upGot, downSent, downGot [32]byte
	var upN, downN int64
	send := func(c *net.TCPConn, seed uint64, n int64, sum *[32]byte) func() error {
		return func() error {
			var err error
			if *sum, err = sendStream(c, seed, n); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			return c.CloseWrite()
		}
	}
	recv := func(c *net.TCPConn, n *int64, sum *[32]byte) func() error {
		return func() error {
			var err error
			*n, *sum, err = recvStream(c)
			return err
		}
	}
	clientSend, clientRecv := send(client, seed, s.up, &upSent), recv(client, &downN, &downGot)
	serverSend, serverRecv := send(server, seed+1, s.down, &downSent), recv(server, &upN, &upGot)
	serverHello := func() error {
		got := make([]byte, len(hello))
		if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, hello) {
			return fmt.Errorf("server got %q (%v) first, want the hello %q", got, err, hello)
		}
		return nil
	}
	seq := func(steps ...func() error) func() error {
		return func() error {
			for _, step := range steps {
				if err := step(); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var steps []func() error
	switch s.first {
	case "client":
		steps = []func() error{seq(clientSend, clientRecv), seq(serverHello, serverRecv, serverSend)}
	case "server":
		steps = []func() error{seq(serverSend, serverHello, serverRecv), seq(clientRecv, clientSend)}
	default:
		steps = []func() error{clientSend, clientRecv, serverSend, seq(serverHello, serverRecv)}
	}
	chs := make([]<-chan error, len(steps))
	for j, step := range steps {
		chs[j] = async(step)
	}
	for j, ch := range chs {
		wait(t, fmt.Sprintf("session %d (%s) step %d", i, s.name, j), ch)
	}
	if upN != s.up || upGot != upSent {
		t.Errorf("session %d (%s): server got %d bytes (sha %x), client sent %d (sha %x)", i, s.name, upN, upGot[:4], s.up, upSent[:4])
	}
	if downN != s.down || downGot != downSent {
		t.Errorf("session %d (%s): client got %d bytes (sha %x), server sent %d (sha %x)", i, s.name, downN, downGot[:4], s.down, downSent[:4])
	}
}

// TestFramedKeptSocketIsClean: after an end frame each way the framed socket comes back to the
// Keeper, after OnDone reported Kept, with nothing of the session left in it either way, and out
// of the relay's hands: what the peer sends next stays in the socket for its new owner, and what
// the owner writes reaches the peer as it is.
func TestFramedKeptSocketIsClean(t *testing.T) {
	for _, dc := range dataConfigs[:2] {
		t.Run(dc.name, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			var doneCalls atomic.Int64
			cfg := dc.cfg
			cfg.OnDone = func(Stats) { doneCalls.Add(1) }
			r, done := testRelay(t, cfg)
			k := newKeeper(t, func(int) {
				if doneCalls.Load() != 1 {
					t.Errorf("Keep ran with %d OnDone calls before it, want 1", doneCalls.Load())
				}
			}, false)
			client, peer := framedPair(t, r, g, nil, "kept", k)
			question, answer := randomBytes(1, 300_000), randomBytes(2, 200_000)
			fromPeer := AppendEnd(AppendFrame(nil, answer))
			peerSide := async(func() error {
				if _, err := peer.Write(fromPeer); err != nil {
					return err
				}
				return nil
			})
			if _, err := client.Write(question); err != nil {
				t.Fatal(err)
			}
			_ = client.CloseWrite()
			readFrames(t, peer, question, true)
			wait(t, "peer's frames", peerSide)
			_ = client.SetReadDeadline(time.Now().Add(endWait))
			if got, err := io.ReadAll(client); err != nil || !bytes.Equal(got, answer) {
				t.Fatalf("client got %d bytes, %v; want the %d-byte answer and EOF", len(got), err, len(answer))
			}
			st := waitStats(t, done, 1)[0]
			if st.Reason != ReasonDone || !st.Kept || st.Err != nil || st.Tag != "kept" || st.AToB != int64(len(question)) || st.BToA != int64(len(answer)) {
				t.Errorf("stats %+v, want done, kept, AToB %d, BToA %d", st, len(question), len(answer))
			}
			fd := next(t, "Keep", k.kept)
			defer unix.Close(fd)

			// Clean: nothing left to read; still connected (no FIN, no error).
			buf := make([]byte, 64)
			if n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
				t.Fatalf("kept socket: recv = %d (%q), %v; want EAGAIN", n, buf[:max(n, 0)], err)
			}
			// The relay no longer reads it: the peer's next bytes wait there for the owner.
			if _, err := peer.Write([]byte("next")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, err := unix.Poll(pfd, int(endWait/time.Millisecond)); n != 1 || err != nil {
				t.Fatalf("poll kept socket: %d, %v", n, err)
			}
			if n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil || string(buf[:n]) != "next" {
				t.Fatalf("kept socket: recv %q, %v; want \"next\" as the peer sent it", buf[:max(n, 0)], err)
			}
			if _, err := unix.Write(fd, []byte("raw")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, peer, 3); string(got) != "raw" {
				t.Fatalf("peer got %q, want \"raw\"", got)
			}
			noMoreStats(t, done, 20*time.Millisecond)
		})
	}
}

// TestFramedKeeperHearsOnce: a Keeper hears of every framed pair it was given exactly once, with
// Keep(-1) when the pair ends any other way than an end frame each way (Close, the idle timeout,
// a reset), the socket then closed; and never of an AddFramed that was refused, whose sockets
// are closed at once.
func TestFramedKeeperHearsOnce(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		g := newRig(t)
		checkFDsAtEnd(t)
		r, done := testRelay(t, Config{})
		k := newKeeper(t, nil, false)
		try := func(what string, toB []byte, same bool, want error) {
			t.Helper()
			_, _, a, b := g.rawFDs(t)
			if same {
				_ = unix.Close(b)
				b = a
			}
			if err := r.AddFramed(a, b, nil, toB, what, k); !errors.Is(err, want) {
				t.Errorf("%s: AddFramed = %v, want %v", what, err, want)
			}
			assertClosed(t, a, b)
		}
		try("prefix too large", make([]byte, MaxPrefix+1), false, ErrPrefixTooLarge)
		try("same fd", nil, true, ErrBadFD)
		_ = r.Close()
		try("closed", nil, false, ErrClosed)
		noMoreStats(t, done, 20*time.Millisecond)
		k.noKeep(t)
	})
	for _, how := range []string{"close", "idle", "peer reset"} {
		t.Run(how, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			cfg := Config{}
			if how == "idle" {
				cfg.IdleTimeout = 100 * time.Millisecond
			}
			r, done := testRelay(t, cfg)
			k := newKeeper(t, nil, false)
			client, peer := framedPair(t, r, g, []byte("hi"), how, k)
			readFrames(t, peer, []byte("hi"), false)
			want := map[string]Reason{"close": ReasonShutdown, "idle": ReasonIdle, "peer reset": ReasonFailed}[how]
			switch how {
			case "close":
				_ = r.Close()
			case "peer reset":
				_ = peer.SetLinger(0)
				_ = peer.Close()
			}
			if st := waitStats(t, done, 1)[0]; st.Reason != want || st.Kept {
				t.Errorf("stats %+v, want %v, not kept", st, want)
			}
			k.closedNotKept(t)
			expectEnd(t, "client", client)
			if how != "peer reset" {
				expectEnd(t, "framed peer", peer)
			}
		})
	}
}

// TestFramedHostilePeer: a framed peer that sends something other than frames (a kind other than
// data or end, an empty data frame, an end frame with a length, a FIN inside a header or a
// frame) fails the pair with ErrBadFrame on side b; the client and the peer are both cut off
// rather than left hanging, the socket is not kept, and no descriptor is left open.
func TestFramedHostilePeer(t *testing.T) {
	good := AppendFrame(AppendFrame(nil, []byte("good ")), []byte("frames"))
	cases := []struct {
		name string
		send []byte
		fin  bool // the peer sends its FIN after send
	}{
		{"unknown kind", []byte{7, 0, 0, 1, 'x'}, false},
		{"empty data frame", []byte{FrameData, 0, 0, 0}, false},
		{"end frame with a length", []byte{FrameEnd, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}, false},
		{"bad header after good frames", append(bytes.Clone(good), 0xff, 0xff, 0xff, 0xff), false},
		{"end frame with a length after good frames", append(bytes.Clone(good), FrameEnd, 0, 0, 1, 'x'), false},
		{"FIN inside a header", append(bytes.Clone(good), FrameData, 0), true},
		{"FIN inside an end header", []byte{FrameEnd, 0, 0}, true},
		{"FIN inside a frame", append(bytes.Clone(good), FrameData, 0, 0, 10, 'a', 'b', 'c'), true},
		{"FIN inside a MaxFrame frame", []byte{FrameData, 0xff, 0xff, 0xff, 'a'}, true},
		{"FIN right after a header", []byte{FrameData, 0, 0, 1}, true},
	}
	for _, dc := range dataConfigs {
		for _, c := range cases {
			t.Run(dc.name+"/"+c.name, func(t *testing.T) {
				g := newRig(t)
				checkFDsAtEnd(t)
				r, done := testRelay(t, dc.cfg)
				k := newKeeper(t, nil, false)
				client, peer := framedPair(t, r, g, nil, c.name, k)
				// The pair runs: the client's bytes reach the peer in a frame.
				if _, err := client.Write([]byte("hi")); err != nil {
					t.Fatal(err)
				}
				readFrames(t, peer, []byte("hi"), false)
				sendAsPeer(t, peer, c.send, c.fin)
				wantBadFrame(t, done, "b")
				expectEnd(t, "client", client)
				expectEnd(t, "framed peer", peer)
				k.closedNotKept(t)
				_ = r.Close()
				_ = client.Close()
				_ = peer.Close()
			})
		}
	}
}

// TestFramedBytesAfterEndFrame: ErrBadFrame covers "bytes after an end frame before the other
// side's end". A peer that sends its end frame and then more frames, before the client has
// finished, must fail the pair; the socket, with the peer's bytes still in it, must not be
// handed to the Keeper as clean.
func TestFramedBytesAfterEndFrame(t *testing.T) {
	for _, dc := range dataConfigs[:2] {
		t.Run(dc.name, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, done := testRelay(t, dc.cfg)
			k := newKeeper(t, nil, false)
			client, peer := framedPair(t, r, g, nil, "after end", k)
			if _, err := client.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			readFrames(t, peer, []byte("hi"), false)
			// One write: the extra frame is in the relay's socket when it reads the end frame.
			if _, err := peer.Write(AppendFrame(AppendEnd(AppendFrame(nil, []byte("bye"))), []byte("junk"))); err != nil {
				t.Fatal(err)
			}
			_ = client.SetReadDeadline(time.Now().Add(endWait))
			got, err := io.ReadAll(client)
			if err == nil && string(got) != "bye" {
				t.Errorf("client got %q then EOF, want \"bye\"", got)
			}
			_ = client.CloseWrite()
			st := waitStats(t, done, 1)[0]
			if st.Reason != ReasonFailed || !errors.Is(st.Err, ErrBadFrame) || st.Kept {
				t.Errorf("stats %+v, want failed with ErrBadFrame, not kept", st)
			}
			if fd := next(t, "Keep", k.kept); fd >= 0 {
				buf := make([]byte, 64)
				n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
				t.Errorf("Keep(%d) got the socket as clean, with %x (%v) of the last session still in it", fd, buf[:max(n, 0)], err)
				_ = unix.Close(fd)
			} else {
				expectEnd(t, "framed peer", peer)
			}
		})
	}
}

// TestFramedStatsCountPayload: for a framed b, AToB and BToA count what the pair carried, as for
// Add: the toB prefix and the bytes from a, the payload of b's frames; no frame header, whether
// it framed the prefix or the client's bytes. The two ends of a link then report the same counts.
func TestFramedStatsCountPayload(t *testing.T) {
	g := newRig(t)
	r, done := testRelay(t, Config{})
	k := newKeeper(t, nil, false)
	client, peer := framedPair(t, r, g, []byte("hello"), "counts", k)
	if _, err := client.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	readFrames(t, peer, []byte("helloabc"), false)
	_ = client.CloseWrite()
	readFrames(t, peer, nil, true)
	if _, err := peer.Write(AppendEnd(AppendFrame(nil, []byte("xyz")))); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(client); err != nil || string(got) != "xyz" {
		t.Fatalf("client got %q, %v; want \"xyz\", then EOF", got, err)
	}
	if st := waitStats(t, done, 1)[0]; st.Reason != ReasonDone || !st.Kept || st.AToB != 8 || st.BToA != 3 {
		t.Errorf("stats AToB %d, BToA %d (%+v); want AToB 8 (\"hello\" and \"abc\"), BToA 3", st.AToB, st.BToA, st)
	}
}

// TestFramedFINInsteadOfEnd: a framed peer that sends a FIN between frames instead of an end
// frame ends its direction like an end frame (the client sees its bytes, then EOF) and the pair
// goes on and ends done, but the socket is closed: it is not known to be clean, so it is not
// kept. Either order: the peer's FIN first, or the client's end first.
func TestFramedFINInsteadOfEnd(t *testing.T) {
	for _, first := range []string{"peer", "client"} {
		t.Run(first+" first", func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, done := testRelay(t, Config{})
			k := newKeeper(t, nil, false)
			client, peer := framedPair(t, r, g, nil, "fin", k)
			if _, err := client.Write([]byte("question")); err != nil {
				t.Fatal(err)
			}
			if first == "client" {
				_ = client.CloseWrite()
			}
			readFrames(t, peer, []byte("question"), first == "client")
			if _, err := peer.Write(AppendFrame(nil, []byte("answer"))); err != nil {
				t.Fatal(err)
			}
			_ = peer.CloseWrite()
			_ = client.SetReadDeadline(time.Now().Add(endWait))
			if got, err := io.ReadAll(client); err != nil || string(got) != "answer" {
				t.Fatalf("client got %q, %v; want \"answer\", then EOF", got, err)
			}
			moreUp := 0
			if first == "peer" {
				// The other direction still works, and ends with an end frame.
				if _, err := client.Write([]byte("more")); err != nil {
					t.Fatal(err)
				}
				_ = client.CloseWrite()
				readFrames(t, peer, []byte("more"), true)
				moreUp = 4
			}
			expectEOF(t, "framed peer", peer) // closed, without a reset
			st := waitStats(t, done, 1)[0]
			if st.Reason != ReasonDone || st.Kept || st.BToA != 6 || st.AToB != int64(len("question")+moreUp) {
				t.Errorf("stats %+v, want done, not kept, AToB %d, BToA 6", st, len("question")+moreUp)
			}
			k.closedNotKept(t)
		})
	}
}

// TestFramedNilKeeperCloses: AddFramed with a nil Keeper, or a framed Pairing without Keep,
// closes the framed socket even after a clean end (the peer gets its end frame, then EOF), and
// Stats.Kept, "went back to its Keeper instead of being closed", is false.
func TestFramedNilKeeperCloses(t *testing.T) {
	t.Run("AddFramed", func(t *testing.T) {
		g := newRig(t)
		checkFDsAtEnd(t)
		r, done := testRelay(t, Config{})
		client, peer := framedPair(t, r, g, nil, "nil keeper", nil)
		if _, err := client.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		_ = client.CloseWrite()
		if _, err := peer.Write(AppendEnd(AppendFrame(nil, []byte("a")))); err != nil {
			t.Fatal(err)
		}
		readFrames(t, peer, []byte("q"), true)
		expectEOF(t, "framed peer", peer)
		expectEOF(t, "client", afterRead(t, client, "a"))
		if st := waitStats(t, done, 1)[0]; st.Reason != ReasonDone || st.Kept {
			t.Errorf("stats %+v, want done and not kept", st)
		}
	})
	t.Run("AwaitFramed", func(t *testing.T) {
		g := newRig(t)
		checkFDsAtEnd(t)
		r, done := testRelay(t, Config{})
		aw := newAwaiter(t, pairWhen(t, []byte("hi"), "nil keep", func() (int, error) { return connectNB(g.back.Addr()) }))
		fd, public := awaitedConn(t, g.front)
		if err := r.AwaitFramed(fd, nil, testTimeout, aw); err != nil {
			t.Fatal(err)
		}
		if _, err := public.Write(AppendEnd(AppendFrame(nil, []byte("hi")))); err != nil {
			t.Fatal(err)
		}
		backend := accept(t, g.back)
		expectEOF(t, "backend", afterRead(t, backend, "hi"))
		_ = backend.CloseWrite()
		readFrames(t, public, nil, true)
		expectEOF(t, "framed peer", public)
		if st := waitStats(t, done, 1)[0]; st.Reason != ReasonDone || st.Kept {
			t.Errorf("stats %+v, want done and not kept", st)
		}
	})
}

// afterRead reads want from c and returns c, for a check of what follows.
func afterRead(t *testing.T, c *net.TCPConn, want string) *net.TCPConn {
	t.Helper()
	if got := readN(t, c, len(want)); string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	return c
}

// TestAwaitFramedSplitHello: the greeting goes out raw; First sees the payload alone, however
// the frames are cut across reads (a header in pieces, a payload in pieces, a header with the
// end of the payload before it), and is not called for reads that carry only framing. The pair
// then relays both ways, with the awaited side framed, and hands the socket to Pairing.Keep after
// an end frame each way.
func TestAwaitFramedSplitHello(t *testing.T) {
	for _, dc := range dataConfigs[:2] {
		t.Run(dc.name, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, done := testRelay(t, dc.cfg)
			hello := []byte("HELLO-WORLD\n")
			k := newKeeper(t, nil, false)
			aw := keepingAwaiter{newAwaiter(t, func(_ int, data []byte) (int, any, error) {
				if !bytes.HasPrefix(hello, data) {
					t.Errorf("First got %q, want a prefix of %q", data, hello)
					return -1, nil, errors.New("not the hello")
				}
				if len(data) < len(hello) {
					return -1, nil, ErrMore
				}
				fd, err := connectNB(g.back.Addr())
				return fd, "split", err
			}), k}
			fd, public := awaitedConn(t, g.front)
			if err := r.AwaitFramed(fd, greeting, testTimeout, aw); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, public, len(greeting)); !bytes.Equal(got, greeting) {
				t.Fatalf("public side got %q, want the raw greeting %q", got, greeting)
			}
			f1, f2, f3 := AppendFrame(nil, hello[:3]), AppendFrame(nil, hello[3:8]), AppendFrame(nil, hello[8:])
			steps := []struct {
				send  []byte
				first string // what First sees after it, "" for no call
			}{
				{f1[:2], ""},
				{f1[2:6], "HE"},
				{append(bytes.Clone(f1[6:]), f2[:3]...), "HEL"},
				{f2[3:4], ""},
				{append(bytes.Clone(f2[4:]), f3[:7]...), "HELLO-WORLD"},
				{f3[7:], string(hello)},
			}
			for i, s := range steps {
				if _, err := public.Write(s.send); err != nil {
					t.Fatal(err)
				}
				if s.first == "" {
					aw.noCalls(t, 30*time.Millisecond)
					continue
				}
				if c := aw.waitFirst(t); c.fd != fd || string(c.data) != s.first {
					t.Fatalf("step %d: First(%d, %q), want First(%d, %q)", i, c.fd, c.data, fd, s.first)
				}
			}
			backend := accept(t, g.back)
			if got := readN(t, backend, len(hello)); !bytes.Equal(got, hello) {
				t.Fatalf("backend got %q first, want %q", got, hello)
			}
			up, down := randomBytes(3, 200_000), randomBytes(4, 300_000)
			upSide := async(func() error {
				_, err := public.Write(AppendEnd(AppendFrame(nil, up)))
				return err
			})
			downSide := async(func() error {
				if _, err := backend.Write(down); err != nil {
					return err
				}
				return backend.CloseWrite()
			})
			_ = backend.SetReadDeadline(time.Now().Add(endWait))
			if got, err := io.ReadAll(backend); err != nil || !bytes.Equal(got, up) {
				t.Fatalf("backend got %d bytes, %v; want %d, then EOF", len(got), err, len(up))
			}
			readFrames(t, public, down, true)
			wait(t, "public side's frames", upSide)
			wait(t, "backend's stream", downSide)
			st := waitStats(t, done, 1)[0]
			if st.Reason != ReasonDone || !st.Kept || st.Tag != "split" || st.AToB != int64(len(hello)+len(up)) || st.BToA != int64(len(down)) {
				t.Errorf("stats %+v, want done, kept, AToB %d, BToA %d", st, len(hello)+len(up), len(down))
			}
			if kept := next(t, "Keep", k.kept); kept != fd {
				t.Errorf("Keep(%d), want the awaited fd %d", kept, fd)
				_ = unix.Close(kept)
			} else {
				_ = unix.Close(kept)
			}
			expectEOF(t, "public side", public)
		})
	}
}

// TestAwaitFramedHelloThenEnd: the hello and the end frame arrive together. First pairs on the
// hello; the backend gets it and EOF; its answer goes back in frames with an end frame, and the
// socket is kept. A First that wants more than came before the end frame has the socket
// dropped with io.ErrUnexpectedEOF.
func TestAwaitFramedHelloThenEnd(t *testing.T) {
	t.Run("paired", func(t *testing.T) {
		g := newRig(t)
		checkFDsAtEnd(t)
		r, done := testRelay(t, Config{})
		k := newKeeper(t, nil, false)
		aw := keepingAwaiter{newAwaiter(t, pairWhen(t, []byte("hello"), "end", func() (int, error) { return connectNB(g.back.Addr()) })), k}
		fd, public := awaitedConn(t, g.front)
		if _, err := public.Write(AppendEnd(AppendFrame(nil, []byte("hello")))); err != nil {
			t.Fatal(err)
		}
		waitReadable(t, fd)
		if err := r.AwaitFramed(fd, nil, testTimeout, aw); err != nil {
			t.Fatal(err)
		}
		backend := accept(t, g.back)
		expectEOF(t, "backend", afterRead(t, backend, "hello"))
		if _, err := backend.Write([]byte("bye")); err != nil {
			t.Fatal(err)
		}
		_ = backend.CloseWrite()
		readFrames(t, public, []byte("bye"), true)
		if st := waitStats(t, done, 1)[0]; st.Reason != ReasonDone || !st.Kept || st.AToB != 5 || st.BToA != 3 {
			t.Errorf("stats %+v, want done, kept, AToB 5, BToA 3", st)
		}
		if kept := next(t, "Keep", k.kept); kept != fd {
			t.Errorf("Keep(%d), want %d", kept, fd)
		}
		_ = unix.Close(fd)
	})
	t.Run("more wanted", func(t *testing.T) {
		g := newRig(t)
		checkFDsAtEnd(t)
		r, _ := testRelay(t, Config{})
		aw := newAwaiter(t, nil)
		fd, public := awaitedConn(t, g.front)
		if _, err := public.Write(AppendEnd(AppendFrame(nil, []byte("hel")))); err != nil {
			t.Fatal(err)
		}
		if err := r.AwaitFramed(fd, nil, testTimeout, aw); err != nil {
			t.Fatal(err)
		}
		if c := aw.waitFirst(t); string(c.data) != "hel" {
			t.Fatalf("First got %q, want \"hel\"", c.data)
		}
		// No more is coming: the relay answers with an abort and waits for the next stream,
		// which First sees from its start.
		readAbort(t, public)
		if _, err := public.Write(AppendFrame(nil, []byte("next"))); err != nil {
			t.Fatal(err)
		}
		if c := aw.waitFirst(t); string(c.data) != "next" {
			t.Fatalf("First got %q for the next stream, want \"next\"", c.data)
		}
		_ = public.Close()
		if err := aw.waitGone(t); err != io.EOF {
			t.Fatalf("Gone(%v), want io.EOF", err)
		}
	})
}

// writeChunks writes each chunk as the framed peer, 20 ms apart so that each is a read of its own.
func writeChunks(t *testing.T, c *net.TCPConn, chunks [][]byte) {
	t.Helper()
	for i, chunk := range chunks {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
}

// sendAsPeer writes b as the framed peer, then its FIN if fin.
func sendAsPeer(t *testing.T, c *net.TCPConn, b []byte, fin bool) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	if fin {
		_ = c.CloseWrite()
	}
}

// wantBadFrame checks the next report: failed with ErrBadFrame on side, the socket not kept.
func wantBadFrame(t *testing.T, done <-chan Stats, side string) {
	t.Helper()
	st := waitStats(t, done, 1)[0]
	var pe *PairError
	if st.Reason != ReasonFailed || !errors.Is(st.Err, ErrBadFrame) || !errors.As(st.Err, &pe) || pe.Side != side || st.Kept {
		t.Errorf("stats %+v (err %v), want failed with ErrBadFrame on side %s, not kept", st, st.Err, side)
	}
}

// waitReadable waits until fd has bytes to read, so that the relay's first read sees what the
// peer wrote in one piece.
func waitReadable(t *testing.T, fd int) {
	t.Helper()
	waitPoll(t, fd, unix.POLLIN, "the peer's bytes")
}

// framedAwaitPaired awaits a framed socket on a new relay whose Awaiter pairs "hello" with a
// backend connection and hands the socket back to k; it sends the hello as the public side and
// returns once the backend has it.
func framedAwaitPaired(t *testing.T, tag string) (done <-chan Stats, k *chanKeeper, public, backend *net.TCPConn) {
	t.Helper()
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{})
	k = newKeeper(t, nil, false)
	aw := keepingAwaiter{newAwaiter(t, pairWhen(t, []byte("hello"), tag, func() (int, error) { return connectNB(g.back.Addr()) })), k}
	fd, public := awaitedConn(t, g.front)
	if err := r.AwaitFramed(fd, nil, testTimeout, aw); err != nil {
		t.Fatal(err)
	}
	if _, err := public.Write(AppendFrame(nil, []byte("hello"))); err != nil {
		t.Fatal(err)
	}
	backend = accept(t, g.back)
	readN(t, backend, 5)
	return done, k, public, backend
}

// TestAwaitFramedBadStart: an awaited framed socket whose peer sends an end frame before any
// payload, bytes after its end frame, or a bad header, is dropped with ErrBadFrame (Gone), the
// peer's connection ends, and First never sees a byte of it.
func TestAwaitFramedBadStart(t *testing.T) {
	for _, c := range []struct {
		name   string
		chunks [][]byte
	}{
		{"bytes after an abort frame", [][]byte{append(AppendAbort(AppendFrame(nil, []byte("he"))), 0)}},
		{"bytes after the end frame", [][]byte{AppendFrame(AppendEnd(AppendFrame(nil, []byte("hello"))), []byte("junk"))}},
		{"stray byte after the end frame", [][]byte{append(AppendEnd(AppendFrame(nil, []byte("hello"))), 0)}},
		{"unknown kind", [][]byte{{9, 0, 0, 1, 'x'}}},
		{"empty data frame", [][]byte{{FrameData, 0, 0, 0}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, done := testRelay(t, Config{})
			aw := newAwaiter(t, func(int, []byte) (int, any, error) {
				t.Errorf("First called")
				return -1, nil, errors.New("no")
			})
			fd, public := awaitedConn(t, g.front)
			if err := r.AwaitFramed(fd, nil, testTimeout, aw); err != nil {
				t.Fatal(err)
			}
			writeChunks(t, public, c.chunks)
			if err := aw.waitGone(t); !errors.Is(err, ErrBadFrame) {
				t.Fatalf("Gone(%v), want ErrBadFrame", err)
			}
			expectEnd(t, "public side", public)
			noMoreStats(t, done, 20*time.Millisecond)
			if r.Awaiting() != 0 || r.Pairs() != 0 {
				t.Errorf("Awaiting() = %d, Pairs() = %d; want 0 and 0", r.Awaiting(), r.Pairs())
			}
		})
	}
}

// TestAwaitFramedStreamEndsFirst: a framed peer whose stream ends (an end or abort frame, whole or
// in pieces) before it said anything First pairs gets an abort frame back, and the socket waits
// for its next stream without First being called for the ended one.
func TestAwaitFramedStreamEndsFirst(t *testing.T) {
	for _, c := range []struct {
		name   string
		chunks [][]byte
	}{
		{"end first", [][]byte{AppendEnd(nil)}},
		{"end first, in pieces", [][]byte{{FrameEnd, 0}, {0, 0}}},
		{"abort first", [][]byte{AppendAbort(nil)}},
		{"abort after a partial hello", [][]byte{AppendAbort(AppendFrame(nil, []byte("he")))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, _ := testRelay(t, Config{})
			aw := newAwaiter(t, func(_ int, data []byte) (int, any, error) {
				if string(data) != "next" {
					return -1, nil, ErrMore
				}
				return -1, nil, errors.New("seen")
			})
			fd, public := awaitedConn(t, g.front)
			if err := r.AwaitFramed(fd, nil, testTimeout, aw); err != nil {
				t.Fatal(err)
			}
			writeChunks(t, public, c.chunks)
			readAbort(t, public)
			if _, err := public.Write(AppendFrame(nil, []byte("next"))); err != nil {
				t.Fatal(err)
			}
			for {
				if c := aw.waitFirst(t); string(c.data) == "next" {
					break
				} else if string(c.data) != "he" {
					t.Fatalf("First got %q, want the next stream's \"next\"", c.data)
				}
			}
			expectEnd(t, "public side", public)
		})
	}
}

// TestAwaitFramedPairFailsOnBadFrame: once paired, the awaited side is framed like AddFramed's b:
// a bad header or a FIN inside a frame fails the pair with ErrBadFrame on side a, the backend is
// cut off, and Pairing.Keep is not called.
func TestAwaitFramedPairFailsOnBadFrame(t *testing.T) {
	for _, c := range []struct {
		name string
		send []byte
		fin  bool
	}{
		{"unknown kind", []byte{7, 0, 0, 1, 'x'}, false},
		{"end frame with a length", []byte{FrameEnd, 0, 0, 2, 'x', 'y'}, false},
		{"FIN inside a frame", []byte{FrameData, 0, 0, 9, 'x'}, true},
		{"FIN inside a header", []byte{FrameData, 0, 0}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			done, k, public, backend := framedAwaitPaired(t, "bad")
			sendAsPeer(t, public, c.send, c.fin)
			wantBadFrame(t, done, "a")
			expectEnd(t, "backend", backend)
			expectEnd(t, "public side", public)
			k.closedNotKept(t)
		})
	}
}

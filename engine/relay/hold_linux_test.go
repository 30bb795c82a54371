package relay

import (
	"bytes"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Held sockets (Hold, AddFramedHeld, OnHeld) over real loopback TCP: a framed socket its Keeper
// holds stays in its loop's epoll set between pairs, its events reach OnHeld under its id, and
// its next pair on that loop relays as any other.

func TestHeldTokenRoundTrip(t *testing.T) {
	for _, id := range []uint64{0, 1, 1<<30 - 1, 1 << 30, 1<<32 + 5, maxHeldID} {
		s, p := heldToken(id)
		ev := unix.EpollEvent{Fd: s, Pad: p}
		if !isHeld(&ev) || heldID(&ev) != id {
			t.Errorf("id %d: token (%d, %d) reads back as held %v, id %d", id, s, p, isHeld(&ev), heldID(&ev))
		}
	}
	for _, slot := range []int32{wakeSlot, 0, 1, 1<<31 - 1} {
		if ev := (unix.EpollEvent{Fd: slot}); isHeld(&ev) {
			t.Errorf("slot %d reads as a held token", slot)
		}
	}
}

// registered reports whether fd is in loop's epoll set, from /proc/self/fdinfo of its epoll
// descriptor ("tfd: N" lines).
func registered(t testing.TB, l *loop, fd int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(l.epfd))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" && f[1] == strconv.Itoa(fd) {
			return true
		}
	}
	return false
}

// framedSession runs one clean session over a framed pair: the client's question in frames to
// the peer, the peer's answer and end frame back, EOF to the client.
func framedSession(t *testing.T, client, peer *net.TCPConn, question, answer string) {
	t.Helper()
	if _, err := client.Write([]byte(question)); err != nil {
		t.Fatal(err)
	}
	_ = client.CloseWrite()
	readFrames(t, peer, []byte(question), true)
	if _, err := peer.Write(AppendEnd(AppendFrame(nil, []byte(answer)))); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(endWait))
	if got, err := io.ReadAll(client); err != nil || string(got) != answer {
		t.Fatalf("client got %q, %v; want %q and EOF", got, err, answer)
	}
}

// heldKeep is what the Keeper's Hold gave: the socket, its id and its loop.
type heldKeep struct {
	fd, loop int
	id       uint64
	ok       bool
}

func TestHeldSocketServesItsNextPairOnItsLoop(t *testing.T) {
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{Loops: 3})
	events := make(chan uint64, 8)
	r.OnHeld(func(id uint64) { events <- id })
	holds := make(chan heldKeep, 8)
	var nextID uint64 = 1 << 40 // past the 30 bits the token's first half keeps
	k := newKeeper(t, func(fd int) {
		if fd < 0 {
			return
		}
		nextID++
		loop, ok := r.Hold(fd, nextID)
		holds <- heldKeep{fd: fd, loop: loop, id: nextID, ok: ok}
	}, true)

	client, peer := framedPair(t, r, g, nil, "first", k)
	framedSession(t, client, peer, "one", "uno")
	if st := waitStats(t, done, 1)[0]; !st.Kept {
		t.Fatalf("first pair: %+v, want kept", st)
	}
	h := next(t, "Keep", holds)
	<-k.kept
	if !h.ok || h.loop < 0 || h.loop >= len(r.loops) {
		t.Fatalf("Hold inside Keep = %d, %v; want a loop", h.loop, h.ok)
	}
	if !registered(t, r.loops[h.loop], h.fd) {
		t.Fatalf("the held socket %d left loop %d's epoll set", h.fd, h.loop)
	}
	if n := len(events); n != 0 {
		t.Fatalf("OnHeld called %d times for a quiet socket", n)
	}

	// The next client, on the held socket's loop: one registration, pointed at the new pair.
	cliFD, client2 := awaitedConn(t, g.front)
	if err := r.AddFramedHeld(h.loop, cliFD, h.fd, nil, []byte("hello"), "second", k); err != nil {
		t.Fatal(err)
	}
	readFrames(t, peer, []byte("hello"), false)
	framedSession(t, client2, peer, "two", "dos")
	st := waitStats(t, done, 1)[0]
	if !st.Kept || st.Loop != h.loop || st.Tag != "second" || st.AToB != int64(len("hellotwo")) {
		t.Fatalf("second pair: %+v, want kept, on loop %d, AToB %d", st, h.loop, len("hellotwo"))
	}
	h2 := next(t, "Keep", holds)
	<-k.kept
	if !h2.ok || h2.fd != h.fd || h2.loop != h.loop {
		t.Fatalf("second Hold: %+v, want socket %d held on loop %d again", h2, h.fd, h.loop)
	}
	if n := len(events); n != 0 {
		t.Fatalf("OnHeld called %d times: the first hold's registration outlived AddFramedHeld", n)
	}

	// The private side speaks while held: OnHeld hears it once, under the second id.
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if id := next(t, "OnHeld", events); id != h2.id {
		t.Fatalf("OnHeld(%d), want the second hold's id %d", id, h2.id)
	}
	// Then it goes away: an edge-triggered registration reports the FIN as a new edge, but the
	// socket is the Keeper's to close, which ends its registration.
	_ = unix.Close(h.fd)
	peer.Close()
	time.Sleep(20 * time.Millisecond)
	for len(events) > 0 {
		if id := <-events; id != h2.id {
			t.Fatalf("OnHeld(%d) after the close, want none or %d", id, h2.id)
		}
	}
	if registered(t, r.loops[h.loop], h.fd) {
		t.Fatalf("socket %d still in loop %d's set after the Keeper closed it", h.fd, h.loop)
	}
	noMoreStats(t, done, 20*time.Millisecond)
}

// Hold refuses a socket that is not being handed back (outside Keep), and inside Keep while no
// OnHeld function is set; the relay then drops the registration as it always did.
func TestHoldRefusesOutsideKeepAndWithoutOnHeld(t *testing.T) {
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{Loops: 1})
	holds := make(chan heldKeep, 2)
	k := newKeeper(t, func(fd int) {
		if fd >= 0 {
			loop, ok := r.Hold(fd, 1)
			holds <- heldKeep{fd: fd, loop: loop, ok: ok}
		}
	}, false)
	client, peer := framedPair(t, r, g, nil, "t", k)
	framedSession(t, client, peer, "q", "a")
	waitStats(t, done, 1)
	h := next(t, "Keep", holds)
	if h.ok {
		t.Fatalf("Hold without OnHeld = %d, true; want false", h.loop)
	}
	eventually(t, "the relay drops the kept socket's registration", func() bool { return !registered(t, r.loops[0], h.fd) })

	r.OnHeld(func(uint64) {})
	if loop, ok := r.Hold(h.fd, 2); ok {
		t.Fatalf("Hold outside Keep = %d, true; want false", loop)
	}
	if registered(t, r.loops[0], h.fd) {
		t.Fatal("Hold outside Keep registered the socket")
	}
	// The socket is still the test's, clean and connected.
	if _, err := unix.Write(h.fd, []byte("raw")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, peer, 3); !bytes.Equal(got, []byte("raw")) {
		t.Fatalf("peer got %q", got)
	}
}

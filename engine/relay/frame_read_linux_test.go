package relay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A framed source is read by copy at each frame's start (readFrames): one read takes the header
// and whatever came after it, several frames and an end frame included, and the payload goes
// out in one write. These tests cover what that read can find beyond a frame: frames for a
// destination that cannot take them yet, and the bytes that may follow an end frame.

// slowClientPair adds a pair whose a is a client with a 4 KiB window (narrowPeer) and whose b is
// a socket on which the test plays the framed peer.
func slowClientPair(t *testing.T, r *Relay, g *rig, k Keeper) (client, peer *net.TCPConn) {
	t.Helper()
	cliFD, client := narrowPeer(t)
	peerFD, peer := awaitedConn(t, g.front)
	if err := r.AddFramed(cliFD, peerFD, nil, nil, "slow client", k); err != nil {
		t.Fatal(err)
	}
	return client, peer
}

// TestFramedFramesToSlowClient: the peer sends frames of 12 KiB, several per read of the relay,
// with its end frame behind them, to a client that reads slowly. What the client's window does
// not take waits in the relay and goes out first when it opens; every byte arrives in order, the
// end frame becomes the client's EOF only after the last of them, and the socket is kept.
func TestFramedFramesToSlowClient(t *testing.T) {
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{})
	k := newKeeper(t, nil, false)
	client, peer := slowClientPair(t, r, g, k)
	payload := randomBytes(21, 96<<10)
	var frames []byte
	for rest := payload; len(rest) > 0; rest = rest[min(len(rest), 12<<10):] {
		frames = AppendFrame(frames, rest[:min(len(rest), 12<<10)])
	}
	if _, err := peer.Write(AppendEnd(frames)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 3000)
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		time.Sleep(time.Millisecond) // a slow reader: the relay's sends keep finding a full window
		n, err := client.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("client: %v after %d of %d bytes", err, len(got), len(payload))
		}
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("client got %d bytes, want the peer's %d in order", len(got), len(payload))
	}
	_ = client.CloseWrite()
	readFrames(t, peer, nil, true)
	if st := waitStats(t, done, 1)[0]; st.Reason != ReasonDone || !st.Kept || st.BToA != int64(len(payload)) {
		t.Errorf("stats %+v, want done, kept, BToA %d", st, len(payload))
	}
	wantKept(t, k, peer)
}

// TestFramedBytesAfterEndInOneRead: what follows an end frame in the same read, while the
// client's direction is still open. An abort frame (whole, or split across reads) cuts the
// stream and is answered with an abort, and the socket is kept; a whole one comes before the
// client's FIN, so the client gets the payload before it, then a reset. Anything else breaks the
// framing and fails the pair.
func TestFramedBytesAfterEndInOneRead(t *testing.T) {
	abort := AppendAbort(nil)
	cases := []struct {
		name  string
		send  [][]byte // written in turn, a pause between
		abort bool     // the stream is cut; otherwise ErrBadFrame
		// the client sees its end as a reset; with the abort's last bytes a moment later, its
		// FIN has gone out before, so it may see EOF first
		reset bool
	}{
		{"abort", [][]byte{append(AppendEnd(AppendFrame(nil, []byte("bye"))), abort...)}, true, true},
		{"abort split", [][]byte{append(AppendEnd(AppendFrame(nil, []byte("bye"))), abort[:2]...), abort[2:]}, true, false},
		{"second end", [][]byte{AppendEnd(AppendEnd(AppendFrame(nil, []byte("bye"))))}, false, false},
		{"abort and more", [][]byte{append(append(AppendEnd(AppendFrame(nil, []byte("bye"))), abort...), 'x')}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, done := testRelay(t, Config{})
			k := newKeeper(t, nil, false)
			client, peer := framedPair(t, r, g, nil, c.name, k)
			if _, err := client.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			readFrames(t, peer, []byte("hi"), false)
			writeChunks(t, peer, c.send)
			if !c.abort {
				wantBadFrame(t, done, "b")
				expectEnd(t, "client", client)
				k.closedNotKept(t)
				return
			}
			_ = client.SetReadDeadline(time.Now().Add(testTimeout))
			got, err := io.ReadAll(client)
			if string(got) != "bye" || c.reset && !errors.Is(err, unix.ECONNRESET) {
				t.Errorf("client: read %q then %v, want \"bye\" then a reset", got, err)
			}
			readAbort(t, peer)
			st := waitStats(t, done, 1)[0]
			if st.Reason != ReasonFailed || !errors.Is(st.Err, ErrAborted) || !st.Kept || st.BToA != 3 {
				t.Errorf("stats %+v (err %v), want failed with ErrAborted, kept, BToA 3", st, st.Err)
			}
			wantKept(t, k, peer)
		})
	}
}

// TestFramedAbortThenBytes: nothing may follow an abort frame before the answer; bytes behind it
// in the same read fail the pair.
func TestFramedAbortThenBytes(t *testing.T) {
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{})
	k := newKeeper(t, nil, false)
	client, peer := framedPair(t, r, g, []byte("hello"), "abort then bytes", k)
	readFrames(t, peer, []byte("hello"), false)
	if _, err := peer.Write(append(AppendAbort(AppendFrame(nil, []byte("partial"))), 'x')); err != nil {
		t.Fatal(err)
	}
	wantBadFrame(t, done, "b")
	expectEnd(t, "client", client)
	k.closedNotKept(t)
}

// TestFramedEndThenFIN: a peer that sends its end frame and closes right behind it, in what the
// relay reads at once: the read that finds the end frame does not find the FIN, which the relay
// still reads before it decides. The client gets the payload and EOF; the socket, closed by its
// peer, is not kept.
func TestFramedEndThenFIN(t *testing.T) {
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{})
	k := newKeeper(t, nil, false)
	client, peer := framedPair(t, r, g, nil, "end then FIN", k)
	if _, err := client.Write([]byte("question")); err != nil {
		t.Fatal(err)
	}
	readFrames(t, peer, []byte("question"), false)
	sendAsPeer(t, peer, AppendEnd(AppendFrame(nil, []byte("answer"))), true)
	_ = client.SetReadDeadline(time.Now().Add(endWait))
	if got, err := io.ReadAll(client); err != nil || string(got) != "answer" {
		t.Fatalf("client got %q, %v; want \"answer\", then EOF", got, err)
	}
	_ = client.CloseWrite()
	st := waitStats(t, done, 1)[0]
	if st.Kept || st.BToA != 6 {
		t.Errorf("stats %+v, want not kept (the peer closed), BToA 6", st)
	}
	k.closedNotKept(t)
}

// TestFramedSmallAndBigFramesInTurn: a conversation whose messages are small and large in turn,
// both ways, as a handshake followed by a download and more requests would be. A direction
// begins its frames by copy while they stay small and the splice way after a large one
// (smallFrame), in both roles: towards the framed peer (sendFrame, or a header with the pipe's
// first splice) and from it (readFrames, or a header read alone). Every message must arrive
// whole and in order each way, the framed peer must see only well-formed frames, and the socket
// must be kept at the end; on every data path (splice, copy only, one small pipe).
func TestFramedSmallAndBigFramesInTurn(t *testing.T) {
	sizes := []int{90, 40 << 10, 300, smallFrame + 1, 5, 200 << 10, smallFrame, 1, 20 << 10, 700}
	for _, dc := range dataConfigs {
		t.Run(dc.name, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, done := testRelay(t, dc.cfg)
			k := newKeeper(t, nil, false)
			client, peer := framedPair(t, r, g, nil, "in turn", k)
			var up, down int64
			for i, size := range sizes {
				// The framed peer speaks first (a server's flight), in frames of the size given.
				fromPeer := randomBytes(uint64(2*i), size)
				if _, err := peer.Write(AppendFrame(nil, fromPeer)); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, size)
				_ = client.SetReadDeadline(time.Now().Add(testTimeout))
				if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, fromPeer) {
					t.Fatalf("message %d (%d bytes) to the client: %v, or other bytes", i, size, err)
				}
				// The client answers with the size of the turn after.
				fromClient := randomBytes(uint64(2*i+1), sizes[(i+1)%len(sizes)])
				if _, err := client.Write(fromClient); err != nil {
					t.Fatal(err)
				}
				_ = peer.SetReadDeadline(time.Now().Add(testTimeout))
				readFrames(t, peer, fromClient, false)
				down += int64(size)
				up += int64(len(fromClient))
			}
			_ = client.CloseWrite()
			readFrames(t, peer, nil, true)
			if _, err := peer.Write(AppendEnd(nil)); err != nil {
				t.Fatal(err)
			}
			expectEOF(t, "client", client)
			if st := waitStats(t, done, 1)[0]; st.Reason != ReasonDone || !st.Kept || st.AToB != up || st.BToA != down {
				t.Errorf("stats %+v, want done, kept, AToB %d, BToA %d", st, up, down)
			}
			wantKept(t, k, peer)
		})
	}
}

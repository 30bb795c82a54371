package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A frame towards a framed socket holds everything its source had queued when the frame began,
// not one pipeful: a frame costs a header each way and bounds the receiver's splices, so bulk
// streams want few of them. A frame announced that way is finished even when the stream is cut
// before all of it went out.

// queuedClient connects a client to the rig's front and writes n bytes that stay queued on the
// relay's end of it (returned as fd), not read by anyone yet; it returns once they are all
// there.
func queuedClient(t *testing.T, g *rig, payload []byte) (fd int, client *net.TCPConn) {
	t.Helper()
	fd, client = awaitedConn(t, g.front)
	if _, err := client.Write(payload); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the client's bytes queued on the relay's end", func() bool {
		q, err := inQueue(int32(fd))
		return err == nil && q == len(payload)
	})
	return fd, client
}

// readHeader reads one frame header as a framed peer.
func readFrameHeader(t *testing.T, c *net.TCPConn) (kind byte, size int) {
	t.Helper()
	hdr := make([]byte, FrameHeader)
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("framed peer: reading a header: %v", err)
	}
	return hdr[0], int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
}

func TestFramedFrameTakesWhatIsQueued(t *testing.T) {
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{PipeSize: MinPipeSize})
	k := newKeeper(t, nil, false)
	payload := randomBytes(7, 48<<10) // twelve pipes of MinPipeSize
	cliFD, client := queuedClient(t, g, payload)
	peerFD, peer := awaitedConn(t, g.front)
	if err := r.AddFramed(cliFD, peerFD, nil, nil, "queued", k); err != nil {
		t.Fatal(err)
	}
	if kind, size := readFrameHeader(t, peer); kind != FrameData || size != len(payload) {
		t.Fatalf("first frame: kind %d, %d bytes; want one data frame of all %d queued bytes", kind, size, len(payload))
	}
	got := readN(t, peer, len(payload))
	if !bytes.Equal(got, payload) {
		t.Fatal("the frame's payload differs from the client's bytes")
	}
	// A small write later is a frame of its own, and the end follows.
	if _, err := client.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	_ = client.CloseWrite()
	readFrames(t, peer, []byte("tail"), true)
	if _, err := peer.Write(AppendEnd(nil)); err != nil {
		t.Fatal(err)
	}
	if st := waitStats(t, done, 1)[0]; st.Reason != ReasonDone || !st.Kept || st.AToB != int64(len(payload)+4) {
		t.Errorf("stats %+v, want done, kept, AToB %d", st, len(payload)+4)
	}
	wantKept(t, k, peer)
}

// narrowPeer connects to a listener whose accepted sockets have a small receive buffer, and
// gives the dialed end (fd, for the relay) a small send buffer, so the relay can send only a
// few KiB to peer before it has to wait.
func narrowPeer(t *testing.T) (fd int, peer *net.TCPConn) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(s uintptr) {
			err = unix.SetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fd, peer = awaitedConn(t, ln.(*net.TCPListener))
	// A set send buffer is not grown by the kernel either.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	return fd, peer
}

// TestFramedCutFinishesAnnouncedFrame: the stream is cut (the client resets, or the framed peer
// sends an abort) while a frame of the client's queued bytes is announced but mostly not sent,
// because the peer reads slowly. The relay sends the rest of that frame (from the client's
// queue, which a reset does not empty) and then the abort frame, and keeps the socket; failing
// the pair would cost the link.
func TestFramedCutFinishesAnnouncedFrame(t *testing.T) {
	for _, by := range []string{"client reset", "peer abort"} {
		t.Run(by, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, done := testRelay(t, Config{PipeSize: MinPipeSize})
			k := newKeeper(t, nil, false)
			payload := randomBytes(11, 64<<10)
			cliFD, client := queuedClient(t, g, payload)
			peerFD, peer := narrowPeer(t)
			if err := r.AddFramed(cliFD, peerFD, nil, nil, "cut", k); err != nil {
				t.Fatal(err)
			}
			kind, size := readFrameHeader(t, peer)
			if kind != FrameData || size != len(payload) {
				t.Fatalf("first frame: kind %d, %d bytes; want a data frame of all %d queued bytes", kind, size, len(payload))
			}
			// The peer's 4 KiB window holds the relay back well inside the frame.
			switch by {
			case "client reset":
				_ = client.SetLinger(0)
				_ = client.Close()
			case "peer abort":
				if _, err := peer.Write(AppendAbort(nil)); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(20 * time.Millisecond) // the cut reaches the relay while the frame is open
			if got := readN(t, peer, size); !bytes.Equal(got, payload) {
				t.Fatal("the announced frame's payload differs from the client's bytes")
			}
			readAbort(t, peer)
			if by == "client reset" {
				if _, err := peer.Write(AppendAbort(nil)); err != nil {
					t.Fatal(err)
				}
			}
			st := waitStats(t, done, 1)[0]
			var pe *PairError
			if st.Reason != ReasonFailed || !st.Kept || !errors.As(st.Err, &pe) {
				t.Errorf("stats %+v (err %v), want failed (cut), kept", st, st.Err)
			}
			if st.AToB != int64(len(payload)) {
				t.Errorf("AToB %d, want the whole frame, %d", st.AToB, len(payload))
			}
			wantKept(t, k, peer)
		})
	}
}

// TestFramedSmallChunksToSlowPeer: small writes to a peer that reads slowly: frame headers and
// payloads go out in pieces as the peer's window opens (a header may be cut anywhere), yet
// every byte arrives in order, in well-formed frames, and the counts leave the headers out.
func TestFramedSmallChunksToSlowPeer(t *testing.T) {
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{})
	k := newKeeper(t, nil, false)
	cliFD, client := awaitedConn(t, g.front)
	peerFD, peer := narrowPeer(t)
	if err := r.AddFramed(cliFD, peerFD, nil, nil, "slow", k); err != nil {
		t.Fatal(err)
	}
	const chunks, size = 300, 700
	want := randomBytes(13, chunks*size)
	wrote := async(func() error {
		for i := range chunks {
			if _, err := client.Write(want[i*size : (i+1)*size]); err != nil {
				return err
			}
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond) // the peer's window fills meanwhile
			}
		}
		return client.CloseWrite()
	})
	time.Sleep(50 * time.Millisecond)
	readFrames(t, peer, want, true)
	wait(t, "client writes", wrote)
	if _, err := peer.Write(AppendEnd(nil)); err != nil {
		t.Fatal(err)
	}
	if st := waitStats(t, done, 1)[0]; st.Reason != ReasonDone || !st.Kept || st.AToB != int64(len(want)) {
		t.Errorf("stats %+v, want done, kept, AToB %d", st, len(want))
	}
	wantKept(t, k, peer)
}

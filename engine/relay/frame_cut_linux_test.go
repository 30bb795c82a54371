package relay

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A framed pair whose unframed side fails, or whose framed peer resets its own (an abort frame),
// cuts the stream like a reset and keeps the framed socket: the unframed side is reset, the
// framed side gets an abort frame for its direction, and what it still sends for the cut stream
// is dropped until its end or abort frame.

// readAbort reads, as a framed peer, data frames (any payload) up to an abort frame; it fails the
// test on an end frame or anything else.
func readAbort(t *testing.T, c *net.TCPConn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	defer c.SetReadDeadline(time.Time{})
	hdr := make([]byte, FrameHeader)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatalf("framed peer: %v before the abort frame", err)
		}
		kind, size := hdr[0], int(hdr[1])<<16|int(hdr[2])<<8|int(hdr[3])
		switch {
		case kind == FrameAbort && size == 0:
			return
		case kind == FrameData && size > 0:
			if _, err := io.CopyN(io.Discard, c, int64(size)); err != nil {
				t.Fatalf("framed peer: %v inside a frame", err)
			}
		default:
			t.Fatalf("framed peer: header %x, want data frames and an abort frame", hdr)
		}
	}
}

// wantKept checks that k got the socket back and that it is the one the peer holds, still
// connected: a byte from the peer arrives on it and nothing else is queued before it.
func wantKept(t *testing.T, k *chanKeeper, peer *net.TCPConn) {
	t.Helper()
	fd := next(t, "Keep", k.kept)
	if fd < 0 {
		t.Fatalf("Keep(-1): the framed socket was closed, not kept")
	}
	defer unix.Close(fd)
	if _, err := peer.Write([]byte{0x42}); err != nil {
		t.Fatal(err)
	}
	waitReadable(t, fd)
	var b [8]byte
	if n, err := unix.Read(fd, b[:]); err != nil || n != 1 || b[0] != 0x42 {
		t.Errorf("the kept socket read %q, %v; want just the peer's next byte", b[:max(n, 0)], err)
	}
}

func TestFramedClientResetCutsAndKeeps(t *testing.T) {
	for _, late := range []bool{false, true} {
		name := "peer answers at once"
		if late {
			name = "peer still sends, then ends"
		}
		t.Run(name, func(t *testing.T) {
			g := newRig(t)
			checkFDsAtEnd(t)
			r, done := testRelay(t, Config{})
			k := newKeeper(t, nil, false)
			client, peer := framedPair(t, r, g, []byte("hello"), "cut", k)
			readFrames(t, peer, []byte("hello"), false)
			_ = client.SetLinger(0)
			_ = client.Close()
			readAbort(t, peer)
			answer := AppendAbort(nil)
			if late {
				answer = AppendEnd(AppendFrame(AppendFrame(nil, make([]byte, 70000)), []byte("late")))
			}
			if _, err := peer.Write(answer); err != nil {
				t.Fatal(err)
			}
			st := waitStats(t, done, 1)[0]
			var pe *PairError
			if st.Reason != ReasonFailed || !st.Kept || !errors.As(st.Err, &pe) || pe.Side != "a" {
				t.Errorf("stats %+v (err %v), want failed on side a, kept", st, st.Err)
			}
			wantKept(t, k, peer)
		})
	}
}

func TestFramedPeerAbortResetsClientAndKeeps(t *testing.T) {
	g := newRig(t)
	checkFDsAtEnd(t)
	r, done := testRelay(t, Config{})
	k := newKeeper(t, nil, false)
	client, peer := framedPair(t, r, g, []byte("hello"), "abort", k)
	readFrames(t, peer, []byte("hello"), false)
	if _, err := peer.Write(AppendAbort(AppendFrame(nil, []byte("partial")))); err != nil {
		t.Fatal(err)
	}
	// The client gets what came before the abort, then a reset, not a clean end.
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(client)
	if err == nil || !errors.Is(err, unix.ECONNRESET) {
		t.Errorf("client: read %q then %v, want a reset", got, err)
	}
	readAbort(t, peer)
	st := waitStats(t, done, 1)[0]
	if st.Reason != ReasonFailed || !errors.Is(st.Err, ErrAborted) || !st.Kept {
		t.Errorf("stats %+v (err %v), want failed with ErrAborted, kept", st, st.Err)
	}
	wantKept(t, k, peer)
}

// On the awaiting side (the private proxy's), a backend that resets mid-stream is cut the same way.
func TestAwaitFramedBackendResetCutsAndKeeps(t *testing.T) {
	done, k, public, backend := framedAwaitPaired(t, "backend reset")
	if _, err := backend.Write([]byte("some reply")); err != nil {
		t.Fatal(err)
	}
	_ = backend.SetLinger(0)
	_ = backend.Close()
	readAbort(t, public)
	// More of the client's stream, then the public side's end: dropped, and the socket kept.
	if _, err := public.Write(AppendEnd(AppendFrame(nil, []byte("more")))); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, done, 1)[0]
	var pe *PairError
	if st.Reason != ReasonFailed || !st.Kept || !errors.As(st.Err, &pe) || pe.Side != "b" {
		t.Errorf("stats %+v (err %v), want failed on side b, kept", st, st.Err)
	}
	wantKept(t, k, public)
}

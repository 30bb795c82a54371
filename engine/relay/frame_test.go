package relay

import (
	"bytes"
	"errors"
	"testing"
)

// deframeAll feeds chunks to one frameState in turn, the way reads of a framed socket arrive,
// and returns the payload they carried and whether (and at which chunk) the end frame came.
// Each chunk is copied first: deframe works in place.
func deframeAll(t *testing.T, chunks ...[]byte) (payload []byte, endAt int, err error) {
	t.Helper()
	var f frameState
	endAt = -1
	for i, c := range chunks {
		if endAt >= 0 && len(c) > 0 {
			t.Fatalf("chunk %d: bytes after the end frame came in chunk %d", i, endAt)
		}
		buf := bytes.Clone(c)
		got, end, err := f.deframe(buf)
		if err != nil {
			return payload, endAt, err
		}
		if len(got) > 0 && &got[0] != &buf[0] {
			t.Fatalf("chunk %d: payload not moved to the front of the buffer", i)
		}
		payload = append(payload, got...)
		if end {
			endAt = i
		}
	}
	return payload, endAt, nil
}

// TestFrameAppendRoundTrip: AppendFrame writes data frames (none for no payload), AppendEnd the
// end frame, both after what dst holds, with the documented header layout; deframe gives back
// the payload and the end.
func TestFrameAppendRoundTrip(t *testing.T) {
	if got := AppendFrame([]byte("x"), nil); !bytes.Equal(got, []byte("x")) {
		t.Fatalf("AppendFrame of no payload = %x, want dst unchanged", got)
	}
	if got := AppendEnd([]byte("x")); !bytes.Equal(got, []byte{'x', FrameEnd, 0, 0, 0}) {
		t.Fatalf("AppendEnd = %x, want 78 01000000", got)
	}
	if got := AppendFrame([]byte("x"), []byte("abc")); !bytes.Equal(got, []byte{'x', FrameData, 0, 0, 3, 'a', 'b', 'c'}) {
		t.Fatalf("AppendFrame(abc) = %x", got)
	}
	// 0x010203 bytes: the length is big-endian in the three bytes after the kind.
	mid := randomBytes(1, 0x010203)
	if got := AppendFrame(nil, mid); !bytes.Equal(got[:FrameHeader], []byte{FrameData, 1, 2, 3}) || !bytes.Equal(got[FrameHeader:], mid) {
		t.Fatalf("AppendFrame of %d bytes: header %x", len(mid), got[:FrameHeader])
	}

	big := randomBytes(1, MaxFrame+1)
	for _, n := range []int{1, 2, 1000, MaxFrame, MaxFrame + 1} {
		payload := big[:n]
		stream := AppendEnd(AppendFrame(nil, payload))
		frames := (n + MaxFrame - 1) / MaxFrame
		if len(stream) != n+FrameHeader*(frames+1) {
			t.Fatalf("%d bytes: stream of %d bytes, want %d frames and an end", n, len(stream), frames)
		}
		// Every data frame is full but the last.
		for i, off := 0, 0; i < frames; i++ {
			want := min(MaxFrame, n-i*MaxFrame)
			h := stream[off : off+FrameHeader]
			if h[0] != FrameData || int(h[1])<<16|int(h[2])<<8|int(h[3]) != want {
				t.Fatalf("%d bytes: frame %d header %x, want data of %d", n, i, h, want)
			}
			off += FrameHeader + want
		}
		got, endAt, err := deframeAll(t, stream)
		if err != nil || endAt != 0 || !bytes.Equal(got, payload) {
			t.Fatalf("%d bytes: deframe gave %d bytes, end in chunk %d, %v", n, len(got), endAt, err)
		}
	}
}

// TestFrameDeframeSplits: however the reads cut a stream of frames (inside a header, between header
// and payload, inside a payload, between frames), deframe gives the same payload and reports
// the end exactly with the chunk that completes the end frame.
func TestFrameDeframeSplits(t *testing.T) {
	var stream []byte
	stream = AppendFrame(stream, []byte("ab"))
	stream = AppendFrame(stream, []byte("c"))
	stream = AppendFrame(stream, []byte("defgh"))
	stream = AppendEnd(stream)
	want := []byte("abcdefgh")
	last := func(chunks [][]byte) int {
		for i := len(chunks) - 1; i >= 0; i-- {
			if len(chunks[i]) > 0 {
				return i
			}
		}
		return -1
	}
	check := func(name string, chunks ...[]byte) {
		t.Helper()
		got, endAt, err := deframeAll(t, chunks...)
		if err != nil || !bytes.Equal(got, want) || endAt != last(chunks) {
			t.Fatalf("%s: payload %q, end in chunk %d, %v; want %q, end in chunk %d", name, got, endAt, err, want, last(chunks))
		}
	}
	check("whole", stream)
	for i := 0; i <= len(stream); i++ {
		check("one cut", stream[:i], stream[i:])
		for j := i; j <= len(stream); j++ {
			check("two cuts", stream[:i], stream[i:j], stream[j:])
		}
	}
	bytewise := make([][]byte, len(stream))
	for i := range stream {
		bytewise[i] = stream[i : i+1]
	}
	check("byte by byte", bytewise...)

	// A long payload cut everywhere against a small buffer size, as the relay reads.
	long := randomBytes(7, 3000)
	stream = AppendEnd(AppendFrame(AppendFrame(nil, long[:1000]), long[1000:]))
	want = long
	for size := 1; size <= 64; size += 7 {
		var chunks [][]byte
		for off := 0; off < len(stream); off += size {
			chunks = append(chunks, stream[off:min(off+size, len(stream))])
		}
		check("fixed size", chunks...)
	}
}

// TestFrameDeframeNoEnd: frames without an end frame give their payload and no end, a header cut
// short is carried to the next call, and several frames in one buffer come out in order.
func TestFrameDeframeNoEnd(t *testing.T) {
	var f frameState
	stream := AppendFrame(AppendFrame(nil, []byte("hello ")), []byte("world"))
	stream = append(stream, FrameData, 0) // half of the next header
	got, end, err := f.deframe(bytes.Clone(stream))
	if err != nil || end || string(got) != "hello world" {
		t.Fatalf("deframe = %q, %v, %v; want \"hello world\", no end", got, end, err)
	}
	got, end, err = f.deframe([]byte{0, 2, '!', '!'})
	if err != nil || end || string(got) != "!!" {
		t.Fatalf("rest of the header: %q, %v, %v; want \"!!\"", got, end, err)
	}
	if got, end, err = f.deframe(nil); err != nil || end || len(got) != 0 {
		t.Fatalf("empty read: %q, %v, %v", got, end, err)
	}
	// The largest frame is valid, and its payload may come in pieces.
	got, end, err = f.deframe([]byte{FrameData, 0xff, 0xff, 0xff, 'x'})
	if err != nil || end || string(got) != "x" || f.rem != MaxFrame-1 {
		t.Fatalf("MaxFrame header: %q, %v, %v, %d left; want \"x\", %d left", got, end, err, f.rem, MaxFrame-1)
	}
}

// TestFrameDeframeEnd: an end frame alone, after payload in the same buffer, or split over calls;
// anything after it is ErrBadFrame.
func TestFrameDeframeEnd(t *testing.T) {
	if got, endAt, err := deframeAll(t, AppendEnd(nil)); err != nil || endAt != 0 || len(got) != 0 {
		t.Fatalf("end alone: %q, end in chunk %d, %v", got, endAt, err)
	}
	if got, endAt, err := deframeAll(t, AppendEnd(AppendFrame(nil, []byte("bye")))); err != nil || endAt != 0 || string(got) != "bye" {
		t.Fatalf("payload and end: %q, end in chunk %d, %v", got, endAt, err)
	}
	if got, endAt, err := deframeAll(t, []byte{FrameEnd}, []byte{0, 0}, []byte{0}); err != nil || endAt != 2 || len(got) != 0 {
		t.Fatalf("end split: %q, end in chunk %d, %v", got, endAt, err)
	}
	for _, after := range [][]byte{{0}, {FrameEnd}, AppendEnd(nil), AppendFrame(nil, []byte("more"))} {
		var f frameState
		b := append(AppendEnd(AppendFrame(nil, []byte("bye"))), after...)
		if got, end, err := f.deframe(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("end frame then %x: %q, %v, %v; want ErrBadFrame", after, got, end, err)
		}
	}
}

// TestFrameDeframeBadHeaders: a kind other than data or end, an empty data frame, an end frame with a
// length: ErrBadFrame, whether the header comes whole, after a good frame, or in pieces.
func TestFrameDeframeBadHeaders(t *testing.T) {
	bad := [][]byte{
		{2, 0, 0, 1},
		{7, 0, 0, 1},
		{0xff, 0, 0, 0},
		{FrameData, 0, 0, 0},
		{FrameEnd, 0, 0, 1},
		{FrameEnd, 0xff, 0xff, 0xff},
		{FrameEnd, 1, 0, 0},
	}
	for _, h := range bad {
		good := AppendFrame(nil, []byte("ok"))
		for _, chunks := range [][][]byte{
			{h},
			{append(bytes.Clone(good), h...)},
			{good, h[:1], h[1:3], h[3:]},
			{append(bytes.Clone(good), h[:2]...), append(bytes.Clone(h[2:]), 'x')},
		} {
			if got, endAt, err := deframeAll(t, chunks...); !errors.Is(err, ErrBadFrame) {
				t.Errorf("header %x in chunks %q: payload %q, end %d, %v; want ErrBadFrame", h, chunks, got, endAt, err)
			}
		}
	}
}

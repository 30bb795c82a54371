package relay

import (
	"encoding/binary"
	"errors"
)

// Framed sockets: one side of a pair may carry its stream in frames, so that the socket outlives
// the pair. The public and private proxies use this for a standby socket that serves one client
// after another: each client's bytes go in data frames, and each direction's end is an end frame
// instead of a FIN, after which the socket is clean (nothing of the client left in it either
// way) and goes back to its owner (a Keeper) rather than being closed.
//
// A frame is a 4-byte header, then the payload: the header's first byte is the kind (FrameData,
// FrameEnd or FrameAbort), the other three the payload's length, big-endian. A data frame carries
// 1 to MaxFrame bytes; an end frame and an abort frame none. Anything else is a protocol error,
// which fails the pair with an abortive close. A frame the relay sends holds what its source had
// queued when the frame began: its first read (by copy, up to 16 KiB) for small reads, all of it
// (the rest spliced with no header of its own) when that read filled its room; the header and
// the first read go out in one write (sendFrame). Frames are read by copy at each frame's start
// too, several at once when they came together (readFrames). A small frame thus costs a read and
// a write on each side, as an unframed chunk would.
//
// An abort frame cuts the stream both ways, as a reset would: its sender's unframed side failed
// (a client that reset, a server that refused the rest), so it resets that side, sends the abort
// in place of its direction's end, and drops what still comes for the failed side until the
// peer's end or abort frame. The peer resets its own unframed side on receipt and answers with an
// abort for its direction. Either way the framed socket stays clean and is kept.

// Frame kinds, the header's first byte.
const (
	FrameData  byte = 0
	FrameEnd   byte = 1
	FrameAbort byte = 2
)

// FrameHeader is the size of a frame header; MaxFrame the largest payload a header can carry.
const (
	FrameHeader = 4
	MaxFrame    = 1<<24 - 1
)

// ErrBadFrame means a framed socket sent something that is not a frame: a kind other than data or
// end, an empty data frame, an end frame with a length, bytes after an end frame before the other
// side's end, or a stream cut inside a frame.
var ErrBadFrame = errors.New("relay: bad frame")

// ErrAborted is a pair's error when the framed peer cut the stream with an abort frame. (One that
// comes before First paired an awaited socket is answered with an abort, and the socket waits
// for the peer's next stream.)
var ErrAborted = errors.New("relay: the framed peer cut the stream")

// AppendFrame appends payload to dst as data frames (none if payload is empty).
func AppendFrame(dst, payload []byte) []byte {
	for len(payload) > 0 {
		n := min(len(payload), MaxFrame)
		dst = appendHeader(dst, FrameData, n)
		dst = append(dst, payload[:n]...)
		payload = payload[n:]
	}
	return dst
}

// AppendEnd appends an end frame to dst.
func AppendEnd(dst []byte) []byte { return appendHeader(dst, FrameEnd, 0) }

// AppendAbort appends an abort frame to dst.
func AppendAbort(dst []byte) []byte { return appendHeader(dst, FrameAbort, 0) }

func appendHeader(dst []byte, kind byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(kind)<<24|uint32(n))
}

// frameState is one direction's framing: a header being read from a framed source or written to
// a framed destination, and the payload bytes left of the current frame.
type frameState struct {
	hdr [FrameHeader]byte
	n   uint8 // reading: header bytes read so far; writing: header bytes still to send
	rem int32 // payload bytes of the current frame not read yet (reading) or not sent yet (writing)
}

// header decodes a complete header: its kind, and the payload length of a data frame.
func (f *frameState) header() (n int32, kind byte, err error) {
	v := binary.BigEndian.Uint32(f.hdr[:])
	kind, length := byte(v>>24), int32(v&MaxFrame)
	switch {
	case kind == FrameData && length > 0:
		return length, kind, nil
	case (kind == FrameEnd || kind == FrameAbort) && length == 0:
		return 0, kind, nil
	}
	return 0, 0, ErrBadFrame
}

// deframe takes raw bytes read from a framed socket, in place: it moves their payload to the
// front of b and returns it, and reports whether an end frame came (the last thing b may hold);
// an abort frame is ErrAborted. f carries a header or frame split across reads from one call to
// the next.
func (f *frameState) deframe(b []byte) (payload []byte, end bool, err error) {
	out := 0
	for i := 0; i < len(b); {
		if end {
			return nil, false, ErrBadFrame
		}
		if f.rem == 0 {
			k := copy(f.hdr[f.n:], b[i:])
			f.n += uint8(k)
			i += k
			if f.n < FrameHeader {
				break
			}
			f.n = 0
			var kind byte
			if f.rem, kind, err = f.header(); err != nil {
				return nil, false, err
			}
			if kind == FrameAbort {
				if i < len(b) {
					return nil, false, ErrBadFrame // nothing may follow before the answer
				}
				return nil, false, ErrAborted
			}
			end = kind == FrameEnd
			continue
		}
		k := min(int(f.rem), len(b)-i)
		out += copy(b[out:], b[i:i+k])
		i += k
		f.rem -= int32(k)
	}
	return b[:out], end, nil
}

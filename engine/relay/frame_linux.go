package relay

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// start makes f's header announce a frame of kind with n payload bytes, to be sent.
func (f *frameState) start(kind byte, n int32) {
	binary.BigEndian.PutUint32(f.hdr[:], uint32(kind)<<24|uint32(n))
	f.n = FrameHeader
	f.rem = n
}

// frameProbe is the size of a frame's first read (or a full pipe, if smaller) from which the
// frame also announces what its source holds beyond that read.
const frameProbe = 16 << 10

// frameLen is the payload length to announce for a frame whose first n bytes were just read
// from src into size bytes of room: those, and when n filled the room or is at least frameProbe,
// everything else src has queued, which later splices move without another header. Every
// frame costs a header each way and caps the receiver's splices at its end: one frame per
// pipeful cost a quarter of the one-stream rate. Small reads (a request, a reply) skip the
// extra system call. Only the loop reads src, so the queued bytes stay until it does (see the
// lost-bytes check in pump, and cut).
func frameLen(src int32, n, size int) int32 {
	if n < min(frameProbe, size) {
		return int32(n)
	}
	q, err := inQueue(src)
	if err != nil || q <= 0 {
		return int32(n)
	}
	return int32(min(n+q, MaxFrame))
}

// sendHeader sends what is left of direction d's frame header to its framed destination, held
// for the payload that follows when more is set. It reports whether the header is out, and
// whether p is still alive.
func (l *loop) sendHeader(p *pair, d int, more bool) (done, alive bool) {
	dr := &p.dir[d]
	flags := 0
	if more {
		flags = unix.MSG_MORE
	}
	for dr.fr.n > 0 {
		if !p.writable[1-d] {
			return false, true
		}
		n, err := sendFlags(p.fd[1-d], dr.fr.hdr[FrameHeader-dr.fr.n:], flags)
		switch {
		case err == unix.EAGAIN:
			return false, l.full(p, 1-d)
		case err == unix.EINTR:
		case err != nil:
			return false, l.fail(p, "write", 1-d, err)
		case n == 0:
			return false, l.fail(p, "write", 1-d, errNoProgress)
		default:
			dr.fr.n -= uint8(n)
		}
	}
	return true, true
}

// readHeader reads direction d's next frame header from its framed source. It reports whether
// the direction can go on (a header is complete: a frame to read, or the end; or a part of one
// came), and whether p is still alive (an abort frame cuts the pair, which may end it). A FIN between frames ends the direction like an end frame
// but leaves the socket unfit to keep; a FIN inside a header fails the pair.
func (l *loop) readHeader(p *pair, d int) (more, alive bool) {
	dr := &p.dir[d]
	n, err := recv(p.fd[d], dr.fr.hdr[dr.fr.n:], 0)
	switch {
	case err == unix.EAGAIN:
		p.readable[d] = false
		return false, true
	case err == unix.EINTR:
		return true, true
	case err != nil:
		return false, l.fail(p, "read", d, err)
	case n == 0 && dr.fr.n > 0:
		return false, l.fail(p, "read", d, ErrBadFrame)
	case n == 0:
		dr.eof = true
		return true, true
	}
	p.last = l.now
	if dr.fr.n += uint8(n); dr.fr.n < FrameHeader {
		return true, true
	}
	dr.fr.n = 0
	rem, kind, err := dr.fr.header()
	if err != nil {
		return false, l.fail(p, "read", d, err)
	}
	dr.fr.rem = rem
	dr.big = rem > smallFrame
	end := kind != FrameData
	dr.eof, dr.ended = end, end
	if kind == FrameAbort {
		dr.aborted = true
		// The peer reset its side: reset ours, and answer with an abort for our direction.
		return true, l.cut(p, &PairError{Op: "read", Side: sideName[d], Err: ErrAborted})
	}
	if end && !p.dir[1-d].shut {
		// What came with the end frame (later bytes are events: see event).
		return true, l.afterEnd(p, d)
	}
	return true, true
}

// afterEnd reads what a framed peer sends on direction d after its end frame while ours has not
// gone out. Only an abort frame may come, once (the peer's unframed side failed after its end:
// this side is cut too); anything else breaks the framing and fails the pair, and a FIN leaves
// the socket unfit to keep. It reports whether p is still alive.
func (l *loop) afterEnd(p *pair, d int) bool {
	dr := &p.dir[d]
	for {
		var b []byte
		if dr.aborted {
			b = dr.fr.hdr[:1] // nothing may follow an abort: one byte tells
		} else {
			b = dr.fr.hdr[dr.fr.n:]
		}
		n, err := recv(p.fd[d], b, 0)
		switch {
		case err == unix.EAGAIN:
			p.readable[d] = false
			return true
		case err == unix.EINTR:
			continue
		case err != nil:
			return l.fail(p, "read", d, err)
		case n == 0 && dr.fr.n == 0:
			dr.ended = false // its FIN: the socket cannot be kept
			return true
		case n == 0 || dr.aborted:
			return l.fail(p, "read", d, ErrBadFrame)
		}
		if dr.fr.n += uint8(n); dr.fr.n < FrameHeader {
			continue
		}
		dr.fr.n = 0
		if _, kind, err := dr.fr.header(); err != nil || kind != FrameAbort {
			return l.fail(p, "read", d, ErrBadFrame)
		}
		dr.aborted = true
		if p.cut == nil {
			return l.cut(p, &PairError{Op: "read", Side: sideName[d], Err: ErrAborted})
		}
	}
}

// cut ends the stream on a framed pair's unframed side, which failed (err) or which the framed
// peer reset (an abort frame): that side is closed with a reset when the pair ends, and the framed
// socket is kept clean for its Keeper. Towards the framed side, what is already framed goes out
// and an abort frame takes the place of the end; what still comes from the framed side is dropped
// until its end or abort frame. A frame whose header went out but whose bytes the failed side
// still holds (a copied chunk, or a frame announced past its first pipeful) is finished first;
// if those bytes cannot be read, the pair fails. It reports whether p is still alive.
func (l *loop) cut(p *pair, err error) bool {
	f := int(p.frm) - 1
	o := 1 - f
	if p.cut == nil {
		p.cut = err
	}
	out, in := &p.dir[o], &p.dir[f] // o to f, f to o
	switch {
	case out.abort:
	case out.shut:
		// Its end frame went out before the cut. The peer's own end is usually on its way (a
		// server refusing a client's last alert), and an abort crossing it would reach the
		// socket after the peer kept it; so an abort follows the end only once the peer has
		// sent abortAfter more bytes for the cut side (a download nobody reads: see discard).
		out.abortLate = true
	default:
		if out.fr.rem > 0 && out.fr.n == FrameHeader {
			// Announced but not a byte of it sent: the frame never was.
			if out.pipe != noPipe {
				l.pipes.put(out.pipe, false)
				out.pipe, out.inPipe = noPipe, 0
			}
			if p.pre != nil && p.pre[o] != nil {
				p.pre[o] = nil // its first bytes, which sendFrame held
				if p.pre[f] == nil {
					p.pre = nil
				}
			}
			out.fr.n, out.fr.rem = 0, 0
		}
		// A frame announced past what the pipe and the held bytes hold is finished from the
		// failed side first, which still has those bytes queued (a reset does not drop them):
		// see pump.
		held := int32(0)
		if p.pre != nil {
			held = int32(len(p.pre[o]))
		}
		out.abort = true
		out.eof = out.fr.rem <= out.inPipe+held
	}
	if in.pipe != noPipe {
		l.pipes.put(in.pipe, false) // for the failed side: dropped
		in.pipe, in.inPipe = noPipe, 0
	}
	if p.pre != nil && p.pre[f] != nil {
		p.pre[f] = nil // a prefix for the failed side
		if p.pre[o] == nil {
			p.pre = nil
		}
	}
	if in.ended {
		in.shut = true
	} else {
		in.discard = true
	}
	p.writable[o] = false
	if out.eof {
		p.readable[o] = false
	}
	if in.shut && out.shut {
		l.finish(p, ReasonDone, nil)
		return false
	}
	l.requeue(p, o)
	l.requeue(p, f)
	return true
}

// discard drops what the framed source of direction d still sends for a side that failed (cut),
// until its end or abort frame; it reports whether p is still alive.
func (l *loop) discard(p *pair, d int) bool {
	dr := &p.dir[d]
	for {
		if dr.eof {
			// An end or abort frame, or a FIN (then the socket is not kept: see finish).
			dr.discard, dr.shut = false, true
			if p.dir[1-d].shut {
				l.finish(p, ReasonDone, nil)
				return false
			}
			return true
		}
		if !p.readable[d] {
			return true
		}
		if dr.fr.rem == 0 {
			if more, alive := l.readHeader(p, d); !more || !alive {
				return alive
			}
			continue
		}
		buf := l.scratch()
		n, err := recv(p.fd[d], buf[:min(len(buf), int(dr.fr.rem))], 0)
		switch {
		case err == unix.EAGAIN:
			p.readable[d] = false
			return true
		case err == unix.EINTR:
		case err != nil:
			return l.fail(p, "read", d, err)
		case n == 0:
			return l.fail(p, "read", d, ErrBadFrame) // a FIN inside a frame
		default:
			dr.fr.rem -= int32(n)
			p.last = l.now
			if out := &p.dir[1-d]; out.abortLate {
				if dr.dropped += int64(n); dr.dropped >= abortAfter {
					// The peer streams on: stop it.
					out.abortLate, out.shut, out.abort = false, false, true
					l.requeue(p, 1-d)
				}
			}
		}
	}
}

// abortAfter is how much a framed peer may send for a cut side, after this side's end frame went
// out, before an abort frame follows that end to stop it.
const abortAfter = 256 << 10

// frameRead is how much readFrames reads at once.
const frameRead = 16 << 10

// smallFrame decides how a direction begins its next frame. While the frames stay small (a
// handshake's flights, a request, a reply), by copy: readFrames and sendFrame move a frame's
// header and bytes with a read and a write, where the splice way costs a header read or write
// and two splices. Once a frame was longer, the splice way: the bytes of a stream (TLS records
// of 16 KiB, one or a few per frame) would otherwise be copied into the loop's buffer and out of
// it, and the system call saved per frame is worth less than copying 8 KiB twice. Interleaved
// against copying every frame's start, a raw one-stream download cost the public proxy 0.43 s/GiB
// instead of 0.63 (BENCHMARKS.md).
const smallFrame = 8 << 10

// readFrames reads direction d's framed source at a small frame's start (see smallFrame) by copy:
// the header, and with it as much of that frame, and of the frames after it, as has come, up to
// frameRead bytes; their payload goes to the destination at once. A connection's first frames are
// small (a handshake's flights, a request, a reply with the end frame behind it): each batch costs
// a read and a write, where a header read, two splices and a read that finds nothing cost four. A
// read that does not fill the buffer emptied the socket (unless its FIN was reported, which such a
// read leaves unread), so no read has to find nothing: the next bytes are a new edge. The rest of a
// frame longer than the read is spliced (pump); what a full destination does not take waits in
// p.pre, at most frameRead bytes, and the direction reads no more until it is out.
//
// pump calls it only while the other direction has not ended, so that what follows an end frame in
// the same read can only be an abort frame (see afterEnd), never bytes of the socket's next pair.
// It reports whether p is still alive.
func (l *loop) readFrames(p *pair, d int) bool {
	dr := &p.dir[d]
	buf := l.scratch()
	buf = buf[:min(len(buf), frameRead)]
	n, err := recv(p.fd[d], buf, 0)
	switch {
	case err == unix.EAGAIN:
		p.readable[d] = false
		return true
	case err == unix.EINTR:
		return true
	case err != nil:
		return l.fail(p, "read", d, err)
	case n == 0:
		dr.eof = true // a FIN between frames: see readHeader
		return true
	}
	p.last = l.now
	b := buf[:n]
	kind, out, i := FrameData, 0, 0
	for i < n && kind == FrameData {
		if dr.fr.rem == 0 {
			if n-i < FrameHeader {
				dr.fr.n = uint8(copy(dr.fr.hdr[:], b[i:])) // readHeader or afterEnd reads the rest
				i = n
				break
			}
			copy(dr.fr.hdr[:], b[i:i+FrameHeader])
			i += FrameHeader
			if dr.fr.rem, kind, err = dr.fr.header(); err != nil {
				return l.fail(p, "read", d, err)
			}
			dr.big = dr.fr.rem > smallFrame
			continue
		}
		k := min(int(dr.fr.rem), n-i)
		out += copy(b[out:], b[i:i+k]) // the payload, moved to the front in place
		i += k
		dr.fr.rem -= int32(k)
	}
	if out > 0 && !l.deliver(p, d, b[:out]) {
		return false
	}
	drained := n < len(buf) && !p.fin[d]
	switch kind {
	case FrameAbort:
		if i < n {
			return l.fail(p, "read", d, ErrBadFrame) // nothing may follow before the answer
		}
		dr.eof, dr.ended, dr.aborted = true, true, true
		// The peer reset its side: reset ours, and answer with an abort for our direction.
		return l.cut(p, &PairError{Op: "read", Side: sideName[d], Err: ErrAborted})
	case FrameEnd:
		dr.eof, dr.ended = true, true
		if rest := b[i:]; len(rest) > 0 {
			// Only an abort frame may follow (afterEnd), once and last.
			if len(rest) > FrameHeader {
				return l.fail(p, "read", d, ErrBadFrame)
			}
			dr.fr.n = uint8(copy(dr.fr.hdr[:], rest))
			if dr.fr.n == FrameHeader {
				dr.fr.n = 0
				if _, k, err := dr.fr.header(); err != nil || k != FrameAbort {
					return l.fail(p, "read", d, ErrBadFrame)
				}
				dr.aborted = true
				if p.cut == nil && !l.cut(p, &PairError{Op: "read", Side: sideName[d], Err: ErrAborted}) {
					return false
				}
			}
		}
		if !drained {
			return l.afterEnd(p, d)
		}
	}
	if drained {
		p.readable[d] = false
	}
	return true
}

// deliver sends payload, read from direction d's source, to its destination; what it does not
// take waits in p.pre. It reports whether p is still alive.
func (l *loop) deliver(p *pair, d int, payload []byte) bool {
	w, alive := l.sendNow(p, d, payload, 0)
	if !alive {
		return false
	}
	p.dir[d].bytes += int64(w)
	p.hold(d, payload[w:])
	return true
}

// sendNow writes b, with flags, to direction d's destination in one call (again if a signal
// interrupts it) and returns how much it took: nothing when the destination is full, which
// clears its writable flag. It reports whether p is still alive.
func (l *loop) sendNow(p *pair, d int, b []byte, flags int) (int, bool) {
	for p.writable[1-d] {
		n, err := sendFlags(p.fd[1-d], b, flags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if !l.full(p, 1-d) {
				return 0, false
			}
		case err != nil:
			return 0, l.fail(p, "write", 1-d, err)
		case n == 0:
			return 0, l.fail(p, "write", 1-d, errNoProgress)
		default:
			return n, true
		}
	}
	return 0, true
}

// hold keeps rest, what direction d's destination did not take, for pump to send before
// anything else of d (nothing if rest is empty).
func (p *pair) hold(d int, rest []byte) {
	if len(rest) == 0 {
		return
	}
	if p.pre == nil {
		p.pre = new([2][]byte)
	}
	p.pre[d] = append([]byte(nil), rest...)
}

// sendFrame begins direction d's next frame towards its framed destination by copy, while its
// frames stay small (see smallFrame): one read of the unframed source, up to frameRead bytes, into
// the loop's buffer behind room for the header, and one write of header and bytes together, where a
// splice in, a header, a splice out and a splice that finds nothing cost four system calls. The
// frame announces what frameLen says: when the read filled the buffer, everything the source has
// queued, whose rest pump splices. A read that does not fill the buffer emptied the socket (unless
// its FIN was reported), so no read has to find nothing; and when the FIN was reported, that read
// was the source's last, so the end frame goes out in the same write (a server that answers and
// closes costs one read and one write, not two of each). What the destination does not take
// waits: the header's rest in d's frame state, the bytes in p.pre (at most frameRead), both sent
// before anything else of d. It reports whether p is still alive.
func (l *loop) sendFrame(p *pair, d int) bool {
	dr := &p.dir[d]
	buf := l.scratch()
	room := min(len(buf)-FrameHeader, frameRead)
	n, err := recv(p.fd[d], buf[FrameHeader:FrameHeader+room], 0)
	switch {
	case err == unix.EAGAIN:
		p.readable[d] = false
		return true
	case err == unix.EINTR:
		return true
	case err != nil:
		return l.fail(p, "read", d, err)
	case n == 0:
		dr.eof = true
		return true
	}
	p.last = l.now
	if n < room && !p.fin[d] {
		p.readable[d] = false
	}
	// A short read after the FIN was reported emptied the source for good.
	last := n < room && p.fin[d] && !dr.abort && FrameHeader+n+FrameHeader <= len(buf)
	dr.fr.start(FrameData, frameLen(p.fd[d], n, room))
	dr.big = dr.fr.rem > smallFrame
	copy(buf, dr.fr.hdr[:])
	flags := 0
	if dr.fr.rem > int32(n) {
		flags = unix.MSG_MORE // the frame's rest follows at once, spliced
	}
	msg := buf[:FrameHeader+n]
	if last {
		msg = AppendEnd(msg) // in place: len(buf) has room for it
	}
	w, alive := l.sendNow(p, d, msg, flags)
	if !alive {
		return false
	}
	data := min(w, FrameHeader+n)
	h := min(data, FrameHeader)
	dr.fr.n -= uint8(h)
	sent := data - h
	dr.fr.rem -= int32(sent)
	dr.bytes += int64(sent)
	p.hold(d, buf[FrameHeader+sent:FrameHeader+n])
	if !last || w <= FrameHeader+n {
		return true // the end frame waits for the read that finds the FIN, as without it
	}
	// The data frame is out and the end frame begun: the direction is over. What is left of the
	// end frame's header, if anything, pump's end case sends.
	dr.fr.start(FrameEnd, 0)
	dr.fr.n -= uint8(w - (FrameHeader + n))
	dr.eof = true
	if dr.fr.n > 0 {
		return true
	}
	return l.endOut(p, d)
}

// endOut marks direction d's last frame (its end or abort frame) as sent to its framed
// destination: the direction is over, and the pair with it once the other direction is too. It
// reports whether p is still alive.
func (l *loop) endOut(p *pair, d int) bool {
	p.dir[d].shut = true
	if p.dir[1-d].shut {
		l.finish(p, ReasonDone, nil)
		return false
	}
	return true
}

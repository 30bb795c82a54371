package relay

import (
	"errors"

	"golang.org/x/sys/unix"
)

// pumpTurn is how many chunks one direction moves before the loop serves other
// pairs; a direction that still has work is put on the ready list.
const pumpTurn = 16

// errNoProgress means a socket call reported success but moved nothing, which a
// stream socket should never do; failing the pair beats spinning on it.
var errNoProgress = errors.New("no progress")

// errLostBytes means a socket gave back fewer bytes than a peek had just shown, or than it
// had queued when a frame announced them; only the loop reads its sockets, so short of a
// kernel bug this means the socket dropped what it held.
var errLostBytes = errors.New("queued bytes vanished")

// pump moves direction d of p (dir 0: a to b, dir 1: b to a) until it has to wait
// for its source, its destination, or its next turn. It reports whether p is still
// alive: the pair may have finished (both directions done) or failed.
//
// Order matters: the prefix goes before anything spliced, bytes already in the
// pipe before new ones are read, and the half-close only after the pipe is empty.
func (l *loop) pump(p *pair, d int) bool {
	dr := &p.dir[d]
	src, dst := p.fd[d], p.fd[1-d]
	for turn := pumpTurn; ; {
		switch {
		case dr.discard:
			return l.discard(p, d)

		case p.pre != nil && p.pre[d] != nil:
			if !p.writable[1-d] {
				return true
			}
			if p.framedDst(d) && dr.fr.n > 0 {
				// What sendFrame left: the rest of its frame's header goes first.
				if done, alive := l.sendHeader(p, d, true); !done {
					return alive
				}
			}
			n, err := send(dst, p.pre[d])
			if err != nil {
				if err == unix.EAGAIN {
					return l.full(p, 1-d)
				}
				if err == unix.EINTR {
					continue
				}
				return l.fail(p, "write", 1-d, err)
			}
			if n == 0 {
				return l.fail(p, "write", 1-d, errNoProgress)
			}
			dr.bytes += int64(n)
			if p.framedDst(d) && dr.fr.rem > 0 {
				dr.fr.rem -= int32(n) // payload of the frame sendFrame began
			}
			if d == 0 && p.preHdr > 0 {
				h := min(n, int(p.preHdr))
				dr.bytes -= int64(h)
				p.preHdr -= uint8(h)
			}
			p.last = l.now
			if n < len(p.pre[d]) {
				p.pre[d] = p.pre[d][n:]
				continue
			}
			p.pre[d] = nil
			if p.pre[1-d] == nil {
				p.pre = nil
			}

		case dr.inPipe > 0:
			if !p.writable[1-d] {
				return true // keep the pipe, read no more: backpressure
			}
			if p.framedDst(d) {
				// The frame's header (announced when its first pipeful was read) goes out
				// first, held for the splice (MSG_MORE).
				if done, alive := l.sendHeader(p, d, true); !done {
					return alive
				}
			}
			n, err := splice(dr.pipe.r, dst, int(dr.inPipe))
			if err != nil {
				if err == unix.EAGAIN {
					return l.full(p, 1-d)
				}
				if err == unix.EINTR {
					continue
				}
				return l.fail(p, "splice to", 1-d, err)
			}
			if n == 0 {
				return l.fail(p, "splice to", 1-d, errNoProgress)
			}
			dr.inPipe -= int32(n)
			if p.framedDst(d) {
				dr.fr.rem -= int32(n)
			}
			dr.bytes += int64(n)
			p.last = l.now
			if dr.inPipe == 0 {
				l.pipes.put(dr.pipe, true)
				dr.pipe = noPipe
			}

		case dr.eof:
			if dr.shut {
				return true
			}
			if p.framedDst(d) {
				// The end frame instead of a FIN: the socket stays open for its keeper. After a
				// cut it is an abort frame, or an end frame already on its way, then an abort.
				for {
					if dr.fr.n == 0 {
						kind := FrameEnd
						if dr.abort {
							kind = FrameAbort
						}
						dr.fr.start(kind, 0)
					}
					if done, alive := l.sendHeader(p, d, false); !done {
						return alive
					}
					if !dr.abort || dr.fr.hdr[0] == FrameAbort {
						break
					}
				}
				return l.endOut(p, d)
			}
			if p.dir[1-d].shut {
				// The other direction is over: closing dst, which finish does, sends the
				// same FIN as a shutdown would.
				dr.shut = true
				l.finish(p, ReasonDone, nil)
				return false
			}
			if err := shutdownWrite(dst); err != nil {
				return l.fail(p, "shutdown", 1-d, err)
			}
			dr.shut = true
			return true

		case dr.abort && dr.fr.rem == 0:
			dr.eof = true // a cut direction has finished its last frame: the abort is next

		case !p.readable[d] || !p.writable[1-d]:
			// Not reading while the destination is full keeps pipes free for
			// directions that can move.
			return true

		case turn == 0:
			l.requeue(p, d)
			return true

		default:
			turn--
			if p.framedDst(d) && dr.fr.rem == 0 && !dr.big {
				if !l.sendFrame(p, d) {
					return false
				}
				continue
			}
			if p.framedSrc(d) && dr.fr.rem == 0 {
				if dr.fr.n == 0 && !p.dir[1-d].shut && !dr.big {
					if !l.readFrames(p, d) {
						return false
					}
					continue
				}
				if more, alive := l.readHeader(p, d); !more || !alive {
					return alive
				}
				continue
			}
			limit := l.pipes.size
			if p.frm != 0 && dr.fr.rem > 0 {
				// Reading a frame, or the rest of one already announced: not past its end.
				limit = min(limit, int(dr.fr.rem))
			}
			pp, ok := l.pipes.get()
			if !ok {
				if !l.copyChunk(p, d) {
					return false
				}
				continue
			}
			n, err := splice(src, pp.w, limit)
			if err != nil || n == 0 {
				l.pipes.put(pp, true) // nothing entered it
				switch {
				case err == nil && p.framedSrc(d):
					return l.fail(p, "read", d, ErrBadFrame) // a FIN inside a frame
				case err == nil && dr.fr.rem > 0:
					return l.fail(p, "read", d, errLostBytes) // announced, then gone
				case err == nil:
					dr.eof = true
				case err == unix.EAGAIN:
					p.readable[d] = false
					return true
				case err == unix.EINTR:
				default:
					return l.fail(p, "splice from", d, err)
				}
				continue
			}
			dr.pipe = pp
			dr.inPipe = int32(n)
			switch {
			case p.framedSrc(d):
				dr.fr.rem -= int32(n)
			case p.framedDst(d) && dr.fr.rem == 0:
				// A frame begun the splice way (see smallFrame): its header goes out with the
				// pipe's first splice.
				dr.fr.start(FrameData, frameLen(src, n, l.pipes.size))
				dr.big = dr.fr.rem > smallFrame
			}
		}
	}
}

// copyChunk moves one chunk of direction d without a pipe: peek at the source,
// write what the destination takes, then consume exactly that much. Nothing stays
// in the buffer afterwards, so one buffer serves the whole loop. It updates the
// readable/writable flags and eof like a splice would and reports whether p is
// still alive.
func (l *loop) copyChunk(p *pair, d int) bool {
	dr := &p.dir[d]
	src, dst := p.fd[d], p.fd[1-d]
	peek := l.scratch()
	if p.framedSrc(d) {
		peek = peek[:min(len(peek), int(dr.fr.rem))]
	}
	n, err := recv(src, peek, unix.MSG_PEEK)
	switch {
	case err == unix.EAGAIN:
		p.readable[d] = false
		return true
	case err == unix.EINTR:
		return true
	case err != nil:
		return l.fail(p, "read", d, err)
	case n == 0 && p.framedSrc(d):
		return l.fail(p, "read", d, ErrBadFrame)
	case n == 0:
		dr.eof = true
		return true
	}
	if p.framedDst(d) {
		if dr.fr.rem == 0 {
			// A frame begun the splice way with no pipe free: it announces what the peek
			// holds, and what the destination does not take now goes out on later calls.
			dr.fr.start(FrameData, int32(n))
			dr.big = dr.fr.rem > smallFrame
		}
		// Its header (or what sendFrame left of it) goes first, then only the frame's rest.
		if done, alive := l.sendHeader(p, d, true); !done {
			return alive
		}
		n = min(n, int(dr.fr.rem))
	}
	w, err := send(dst, l.buf[:n])
	switch {
	case err == unix.EAGAIN:
		return l.full(p, 1-d)
	case err == unix.EINTR:
		return true
	case err != nil:
		return l.fail(p, "write", 1-d, err)
	case w == 0:
		return l.fail(p, "write", 1-d, errNoProgress)
	}
	for got := 0; got < w; {
		m, err := recv(src, l.buf[got:w], 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return l.fail(p, "read", d, err)
		case m == 0:
			return l.fail(p, "read", d, errLostBytes)
		}
		got += m
	}
	if p.frm != 0 {
		dr.fr.rem -= int32(w) // the framed side's frame, read or written
	}
	dr.bytes += int64(w)
	p.last = l.now
	return true
}

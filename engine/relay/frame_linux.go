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
			p.writable[1-d] = false
			return false, true
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
// came), and whether p is still alive. A FIN between frames ends the direction like an end frame
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
	rem, end, err := dr.fr.header()
	if err != nil {
		return false, l.fail(p, "read", d, err)
	}
	dr.fr.rem = rem
	dr.eof, dr.ended = end, end
	if end && !p.dir[1-d].shut {
		// Our end frame has not gone out, so the peer may not speak again yet: bytes that came
		// with its end frame are out of turn (later ones are caught as events: see event).
		var b [1]byte
		switch n, err := recv(p.fd[d], b[:], unix.MSG_PEEK); {
		case err == unix.EAGAIN:
			p.readable[d] = false
		case err == nil && n > 0:
			return false, l.fail(p, "read", d, ErrBadFrame)
		case err == nil:
			dr.ended = false // its FIN: the socket cannot be kept
		}
	}
	return true, true
}

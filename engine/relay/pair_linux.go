package relay

// direction is one way through a pair: dir[0] moves a to b, dir[1] moves b to a.
type direction struct {
	bytes  int64 // delivered to the destination (prefix included)
	pipe   pipe  // held only while inPipe > 0
	inPipe int32 // bytes read from the source but not yet delivered
	eof    bool  // the source reached end of stream
	shut   bool  // the destination was shut down for writing
	queued bool  // waiting in the loop's ready list
	// ended: the source is framed and its end came as an end or abort frame, not a FIN;
	// aborted: an abort frame came (after an end frame, or as the end).
	ended, aborted bool
	// abort: the destination is framed and gets an abort frame for its end (cut);
	// abortLate: its end frame went out before the cut, and an abort follows if the peer
	// streams on (see discard).
	abort, abortLate bool
	// discard: the source is framed and its payload is dropped until its end (cut);
	// dropped counts what was dropped.
	discard bool
	// big: the last frame this direction read or began was longer than smallFrame, so the
	// next one begins the splice way (see smallFrame).
	big     bool
	dropped int64
	fr      frameState // a framed source's or destination's framing (a pair frames one side)
}

// pair is the whole per-pair state: about 100 bytes, no goroutine, no timer.
// It lives in a loop's slab and is only touched by that loop.
type pair struct {
	fd       [2]int32 // a, b
	gen      uint32   // bumped on release, so stale events and ready entries miss
	slot     int32    // own index in the slab
	live     bool
	readable [2]bool // edge-triggered state: true until a read returns EAGAIN
	// fin: an event reported the peer's FIN (or a hangup) on that side, which a read that
	// returns data leaves unread, so a short read no longer means the socket is empty.
	fin      [2]bool
	writable [2]bool // true until a write returns EAGAIN
	// wantOut: that side's registration asks for room to write (writeEvents), as it does from
	// the first write that found the socket full on (see full).
	wantOut [2]bool
	dir     [2]direction
	last    int64 // loop clock when a byte last moved
	// pre holds bytes for a destination that did not take them at once, sent before anything
	// else of their direction: the prefixes (pre[0] goes to b, pre[1] to a), and what a framed
	// source's read brought for a full destination (readFrames).
	pre   *[2][]byte
	tag   any
	await *awaiting // not nil while fd[0] is an awaited socket and fd[1] is not there yet
	// frm is the framed side plus one (0: neither); keep takes that socket back after a clean end.
	frm  uint8
	keep Keeper
	// cut is set once the unframed side of a framed pair failed or was reset (see cut).
	cut error
	// preHdr is how many bytes at the front of pre[0] are a frame header AddFramed put there,
	// not counted as delivered.
	preHdr uint8
}

// framedSrc and framedDst report whether direction d reads from, or writes to, the framed side.
func (p *pair) framedSrc(d int) bool { return p.frm == uint8(d)+1 }
func (p *pair) framedDst(d int) bool { return p.frm == uint8(1-d)+1 }

// genMask keeps the generation to 30 bits so that gen<<1|side fits a
// non-negative int32 (the epoll data's second half).
const genMask = 1<<30 - 1

// token packs what an event or ready entry needs to find its pair again.
func token(slot int32, gen uint32, side int) (int32, int32) {
	return slot, int32((gen&genMask)<<1 | uint32(side))
}

// slabChunk pairs are allocated at a time; chunks never move, so a *pair stays
// valid while the loop works on it, and the slab never copies on growth.
const slabChunk = 256

// slab holds a loop's pairs, indexed by slot; memory grows to the loop's peak
// number of pairs (bounded by MaxPairs) and is kept for reuse. Which slot an entry
// gets is decided when it is queued (slots, under the loop's mutex), so that its
// sockets are registered for their pair once, by enqueue; the slab itself is the
// loop's alone.
type slab struct {
	chunks []*[slabChunk]pair
	used   int32 // every slot claimed so far is below this
}

// slotRef names a slot and the generation its next pair has.
type slotRef struct {
	slot int32
	gen  uint32
}

// slots hands out slot names: freed ones first (with their next generation), then
// new ones. Guarded by the loop's mutex.
type slots struct {
	free []slotRef
	next int32
}

func (f *slots) take() slotRef {
	if n := len(f.free); n > 0 {
		r := f.free[n-1]
		f.free = f.free[:n-1]
		return r
	}
	f.next++
	return slotRef{slot: f.next - 1}
}

func (f *slots) put(r slotRef) { f.free = append(f.free, r) }

// claim makes the pair record a queued entry was given, growing the slab to it. The record is
// empty already: new, or emptied by release.
func (s *slab) claim(r slotRef) *pair {
	for int(r.slot)/slabChunk >= len(s.chunks) {
		s.chunks = append(s.chunks, new([slabChunk]pair))
	}
	s.used = max(s.used, r.slot+1)
	p := s.at(r.slot)
	p.slot, p.gen = r.slot, r.gen
	return p
}

func (s *slab) at(i int32) *pair {
	return &s.chunks[i/slabChunk][i%slabChunk]
}

// lookup finds the live pair an event or ready entry refers to, or nil if that
// pair has ended since.
func (s *slab) lookup(slot, tok int32) *pair {
	if slot < 0 || slot >= s.used {
		return nil
	}
	p := s.at(slot)
	if !p.live || int32((p.gen&genMask)<<1) != tok&^1 {
		return nil
	}
	return p
}

// release empties slot i and returns its name for the next pair, a generation later, so
// that events and ready entries of the pair that ended there miss.
func (s *slab) release(i int32) slotRef {
	p := s.at(i)
	*p = pair{gen: p.gen + 1}
	return slotRef{slot: i, gen: p.gen}
}

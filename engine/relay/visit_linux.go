package relay

import "iter"

// Visit lets a caller read the live pairs' byte counts without the loops publishing anything
// per chunk: the counts stay plain fields of each pair, which only its loop touches, and the
// loop itself reads them out when asked.

// Flow is a live pair as Visit reports it: the bytes delivered so far each way, counted as
// Stats counts them, and the pair's tag.
type Flow struct {
	AToB, BToA int64
	Tag        any
}

// visit is a Visit call waiting for one loop.
type visit struct {
	f    func(loop int, live iter.Seq[Flow])
	done chan struct{}
}

// Visit calls f once per loop, on that loop's goroutine, with the loop's index and its live
// pairs (an awaited socket is not a pair until its Awaiter pairs it). The loops take their
// turns one after another and Visit returns after the last, so f may gather into its caller's
// variables without a lock.
//
// What OnDone reported for a loop (Stats.Loop) before its turn plus the flows of that turn
// counts each pair of the loop once: a pair is either still live there or was reported before.
// So a caller that keeps OnDone's bytes per loop and adds them up at each loop's turn has
// totals that include the bytes of connections still open and never go down.
//
// f must not block: the loop serves no pair while it runs, and its cost is one pass over the
// loop's pairs. A loop that has stopped has no live pairs; f then runs on Visit's goroutine,
// after that loop's last OnDone. Safe from any goroutine except OnDone and an Awaiter's
// methods, which run on a loop and would wait for themselves.
func (r *Relay) Visit(f func(loop int, live iter.Seq[Flow])) {
	for _, l := range r.loops {
		v := &visit{f: f, done: make(chan struct{})}
		if l.requestVisit(v) {
			<-v.done
			continue
		}
		<-l.gone
		f(l.idx, noFlows)
	}
}

func noFlows(func(Flow) bool) {}

// requestVisit queues v for the loop and wakes it; false once the loop is closed. Any
// goroutine.
func (l *loop) requestVisit(v *visit) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.visits = append(l.visits, v)
	l.wake()
	return true
}

// serveVisit runs a Visit call on the loop.
func (l *loop) serveVisit(v *visit) {
	v.f(l.idx, l.flows)
	close(v.done)
}

// flows yields the loop's live pairs. Loop goroutine only.
func (l *loop) flows(yield func(Flow) bool) {
	for i := range l.slab.used {
		p := l.slab.at(i)
		if !p.live || p.await != nil {
			continue
		}
		if !yield(Flow{AToB: p.dir[0].bytes, BToA: p.dir[1].bytes, Tag: p.tag}) {
			return
		}
	}
}

package relay

import (
	"bytes"
	"io"
	"iter"
	"net"
	"sync"
	"testing"
)

// perLoop keeps OnDone's bytes per loop and tag, as a metrics collector would: written by
// OnDone and read by Visit's f, both on the pair's loop, so it needs no lock.
type perLoop struct {
	done []map[any][2]int64
}

func newPerLoop(loops int) *perLoop {
	pl := &perLoop{done: make([]map[any][2]int64, loops)}
	for i := range pl.done {
		pl.done[i] = map[any][2]int64{}
	}
	return pl
}

func (pl *perLoop) onDone(s Stats) {
	d := pl.done[s.Loop]
	t := d[s.Tag]
	d[s.Tag] = [2]int64{t[0] + s.AToB, t[1] + s.BToA}
}

// totals runs Visit and returns, per tag, finished plus live bytes each way and the live pairs.
func (pl *perLoop) totals(r *Relay) (bytes map[any][2]int64, live map[any]int) {
	bytes, live = map[any][2]int64{}, map[any]int{}
	seen := map[int]bool{}
	r.Visit(func(loop int, flows iter.Seq[Flow]) {
		seen[loop] = true
		for tag, b := range pl.done[loop] {
			t := bytes[tag]
			bytes[tag] = [2]int64{t[0] + b[0], t[1] + b[1]}
		}
		for f := range flows {
			t := bytes[f.Tag]
			bytes[f.Tag] = [2]int64{t[0] + f.AToB, t[1] + f.BToA}
			live[f.Tag]++
		}
	})
	if len(seen) != r.Loops() {
		panic("Visit skipped a loop")
	}
	return bytes, live
}

// echo moves n bytes from w to rd and checks they arrive.
func echo(t *testing.T, w, rd *net.TCPConn, n int) {
	t.Helper()
	msg := bytes.Repeat([]byte{'x'}, n)
	if _, err := w.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(rd, got); err != nil {
		t.Fatalf("read: %v", err)
	}
}

// Bytes of connections still open show up in Visit as soon as they are delivered, per tag, and
// stay counted once their pair finishes: finished (OnDone, per loop) plus live never goes down.
func TestVisitCountsOpenAndFinishedPairs(t *testing.T) {
	pl := newPerLoop(2)
	r, done := testRelay(t, Config{Loops: 2, OnDone: pl.onDone})
	g := newRig(t)
	type conn struct{ client, server *net.TCPConn }
	var conns []conn
	for i, tag := range []string{"a", "b", "a", "b", "a"} {
		c, s := g.pipeline(t, r, nil, []byte("hi"), tag)
		conns = append(conns, conn{c, s})
		got := make([]byte, 2)
		if _, err := io.ReadFull(s, got); err != nil {
			t.Fatalf("prefix %d: %v", i, err)
		}
		echo(t, c, s, 1000*(i+1))
		echo(t, s, c, 10*(i+1))
	}
	// a: pairs 0, 2, 4; b: pairs 1, 3. Each a-to-b count includes the 2-byte prefix.
	want := map[any][2]int64{"a": {2*3 + 1000 + 3000 + 5000, 10 + 30 + 50}, "b": {2*2 + 2000 + 4000, 20 + 40}}
	got, live := pl.totals(r)
	if got["a"] != want["a"] || got["b"] != want["b"] || live["a"] != 3 || live["b"] != 2 {
		t.Fatalf("open pairs: bytes %v live %v, want bytes %v and 3 a, 2 b live", got, live, want)
	}
	// Finish pairs 0 and 1 (one of each tag); the totals stay and the live counts drop.
	for _, c := range conns[:2] {
		_ = c.client.CloseWrite()
		_ = c.server.CloseWrite()
	}
	waitStats(t, done, 2)
	got, live = pl.totals(r)
	if got["a"] != want["a"] || got["b"] != want["b"] || live["a"] != 2 || live["b"] != 1 {
		t.Fatalf("after two finished: bytes %v live %v, want bytes %v and 2 a, 1 b live", got, live, want)
	}
	// More bytes on an open pair are counted on the next visit.
	echo(t, conns[4].client, conns[4].server, 7)
	got, _ = pl.totals(r)
	if got["a"][0] != want["a"][0]+7 {
		t.Fatalf("a to b after 7 more bytes: %d, want %d", got["a"][0], want["a"][0]+7)
	}
}

// Visits while bytes stream through many pairs, and while they finish, see totals that never
// go down and end at exactly what went through. Run with -race, it also checks that f and
// OnDone share the per-loop state without a lock safely.
func TestVisitTotalsNeverGoDown(t *testing.T) {
	const pairs, chunks, chunk = 8, 50, 4096
	pl := newPerLoop(3)
	r, done := testRelay(t, Config{Loops: 3, OnDone: pl.onDone})
	g := newRig(t)
	stop := make(chan struct{})
	var watch sync.WaitGroup
	var visits int
	watch.Add(1)
	go func() {
		defer watch.Done()
		var last int64
		for {
			b, _ := pl.totals(r)
			visits++
			n := b["t"][0]
			if n < last {
				t.Errorf("total went down from %d to %d", last, n)
				return
			}
			last = n
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	for range pairs {
		c, s := g.pipeline(t, r, nil, nil, "t")
		wg.Add(1)
		go func() {
			defer wg.Done()
			go func() {
				_, _ = io.Copy(io.Discard, s)
				_ = s.CloseWrite()
			}()
			msg := bytes.Repeat([]byte{'y'}, chunk)
			for range chunks {
				if _, err := c.Write(msg); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
	wg.Wait()
	waitStats(t, done, pairs)
	close(stop)
	watch.Wait()
	got, live := pl.totals(r)
	if want := int64(pairs * chunks * chunk); got["t"][0] != want || live["t"] != 0 {
		t.Fatalf("after all finished: %d bytes, %d live; want %d bytes, none live (after %d visits)", got["t"][0], live["t"], want, visits)
	}
}

// After Close, Visit still calls f once per loop, with no live pair, after every OnDone.
func TestVisitAfterClose(t *testing.T) {
	pl := newPerLoop(2)
	r, done := testRelay(t, Config{Loops: 2, OnDone: pl.onDone})
	g := newRig(t)
	c, s := g.pipeline(t, r, nil, nil, "x")
	echo(t, c, s, 100)
	_ = r.Close()
	waitStats(t, done, 1)
	got, live := pl.totals(r)
	if got["x"][0] != 100 || len(live) != 0 {
		t.Fatalf("after Close: bytes %v live %v, want 100 bytes a to b and nothing live", got, live)
	}
}

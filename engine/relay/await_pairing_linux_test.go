package relay

import (
	"errors"
	"io"
	"testing"
)

// TestAwaitPairingRewritesTheFirstBytes: First may keep a header of the awaited socket's first
// bytes for itself (Skip) and put bytes of its own in front of the rest (Head); the peer gets
// exactly Head and the rest, then the relay goes on both ways, and the pair's AToB counts what
// the peer got.
func TestAwaitPairingRewritesTheFirstBytes(t *testing.T) {
	for _, c := range []struct {
		name string
		skip int
		head string
		want string // what the backend gets first
	}{
		{"skip and head", 4, "PROXY:", "PROXY:hello"},
		{"skip only", 4, "", "hello"},
		{"head only", 0, "PROXY:", "PROXY:HDR:hello"},
		{"everything skipped", 9, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, done := testRelay(t, Config{})
			g := newRig(t)
			first := []byte("HDR:hello")
			aw := newAwaiter(t, pairWhen(t, first, "rewritten", func() (int, error) { return connectNB(g.back.Addr()) }))
			head := []byte(c.head)
			aw.rewrite = func([]byte) (int, []byte) { return c.skip, head }
			fd, public := awaitedConn(t, g.front)
			if err := r.Await(fd, nil, testTimeout, aw); err != nil {
				t.Fatal(err)
			}
			if _, err := public.Write(first); err != nil {
				t.Fatal(err)
			}
			backend := accept(t, g.back)
			if got := readN(t, backend, len(c.want)); string(got) != c.want {
				t.Fatalf("backend got %q first, want %q", got, c.want)
			}
			atPublic, atBackend := exchange(t, public, backend, []byte("more"), []byte("reply"))
			if string(atPublic) != "reply" || string(atBackend) != "more" {
				t.Fatalf("public got %q, backend %q", atPublic, atBackend)
			}
			if s := waitStats(t, done, 1)[0]; s.Reason != ReasonDone || s.Tag != "rewritten" || s.AToB != int64(len(c.want)+4) {
				t.Fatalf("stats %+v, want done, AToB %d", s, len(c.want)+4)
			}
		})
	}
}

// TestAwaitPairingOutOfRange: a Skip past the data, a negative one or a Head over MaxPrefix
// fails the pair (the peer closed, OnDone told) instead of delivering anything.
func TestAwaitPairingOutOfRange(t *testing.T) {
	for _, c := range []struct {
		name string
		skip int
		head []byte
		want error
	}{
		{"skip past the data", 6, nil, ErrBadFD},
		{"negative skip", -1, nil, ErrBadFD},
		{"head too large", 0, make([]byte, MaxPrefix+1), ErrPrefixTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, done := testRelay(t, Config{})
			g := newRig(t)
			aw := newAwaiter(t, pairWhen(t, []byte("hello"), "bad", func() (int, error) { return connectNB(g.back.Addr()) }))
			aw.rewrite = func([]byte) (int, []byte) { return c.skip, c.head }
			fd, public := awaitedConn(t, g.front)
			if err := r.Await(fd, nil, testTimeout, aw); err != nil {
				t.Fatal(err)
			}
			if _, err := public.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			s := waitStats(t, done, 1)[0]
			if s.Reason != ReasonFailed || !errors.Is(s.Err, c.want) {
				t.Fatalf("stats %+v, want failed with %v", s, c.want)
			}
			if got, _ := io.ReadAll(public); len(got) != 0 {
				t.Fatalf("the public side got %q", got)
			}
			eventually(t, "Pairs() back to 0", func() bool { return r.Pairs() == 0 && r.Awaiting() == 0 })
		})
	}
}

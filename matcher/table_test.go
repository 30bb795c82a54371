package matcher

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// everything lets the test operators announce any name used below.
var everything = []string{"test", "example.com", "local"}

// holder returns the operator Lookup routes host to at now, or "".
func holder(tb *Table, host string, now time.Time) string {
	a, ok := tb.Lookup([]byte(host), now)
	if !ok {
		return ""
	}
	return a.Operator
}

// announce announces one name and returns its result.
func announce(tb *Table, op, domain string, exp time.Time, now time.Time) error {
	return tb.Announce(op, everything, []Item{{Domain: domain, ExpiresAt: exp}}, now)[0]
}

func mustAnnounce(t *testing.T, tb *Table, op, domain string, exp time.Time, now time.Time) {
	t.Helper()
	if err := announce(tb, op, domain, exp, now); err != nil {
		t.Fatalf("announce %q by %s: %v", domain, op, err)
	}
}

func TestLookupExactAndWildcard(t *testing.T) {
	tb := New(Options{})
	mustAnnounce(t, tb, "exact", "app.example.com", time.Time{}, t0)
	mustAnnounce(t, tb, "wild", "*.example.com", time.Time{}, t0)
	mustAnnounce(t, tb, "deep", "*.b.example.com", time.Time{}, t0)
	mustAnnounce(t, tb, "single", "localhost.test", time.Time{}, t0)

	tests := []struct {
		host, op, domain string
	}{
		{"app.example.com", "exact", "app.example.com"}, // exact beats wildcard
		{"www.example.com", "wild", "*.example.com"},
		{"b.example.com", "wild", "*.example.com"},
		{"x.b.example.com", "deep", "*.b.example.com"},
		{"a.x.example.com", "", ""}, // one label only
		{"example.com", "", ""},     // the parent itself is not covered
		{"*.example.com", "", ""},   // a literal pattern is no host name
		{"localhost.test", "single", "localhost.test"},
		{"other.test", "", ""},
		{"com", "", ""},
		{"", "", ""},
		{".example.com", "", ""},
		{"example.com.", "", ""}, // Lookup takes normalised names only
	}
	for _, tc := range tests {
		a, ok := tb.Lookup([]byte(tc.host), t0)
		if tc.op == "" {
			if ok {
				t.Errorf("Lookup(%q) = %+v, want no match", tc.host, a)
			}
			continue
		}
		if !ok || a.Operator != tc.op || a.Domain != tc.domain || !a.ExpiresAt.IsZero() {
			t.Errorf("Lookup(%q) = %+v, %v; want operator %s, domain %s, no expiry", tc.host, a, ok, tc.op, tc.domain)
		}
	}
}

func TestAnnounceNormalisesNames(t *testing.T) {
	tb := New(Options{})
	mustAnnounce(t, tb, "op", "WWW.Example.COM.", time.Time{}, t0)
	mustAnnounce(t, tb, "op", "*.Wild.Example.Com", time.Time{}, t0)
	if got := holder(tb, "www.example.com", t0); got != "op" {
		t.Errorf("mixed-case announcement not found under its normal form: %q", got)
	}
	if got := holder(tb, "x.wild.example.com", t0); got != "op" {
		t.Errorf("mixed-case wildcard not found: %q", got)
	}
	// The same name in another spelling is the same name.
	if err := announce(tb, "other", "www.EXAMPLE.com", time.Time{}, t0); !errors.Is(err, ErrTaken) {
		t.Errorf("other spelling by another operator: %v, want ErrTaken", err)
	}
	want := []Announcement{{Domain: "*.wild.example.com", Operator: "op"}, {Domain: "www.example.com", Operator: "op"}}
	if got := tb.List(t0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestAnnounceRules(t *testing.T) {
	type step struct {
		op, domain string
		exp        time.Duration // from t0; 0 = no expiry
		at         time.Duration // when the step runs, from t0
	}
	never := time.Duration(0)
	tests := []struct {
		name    string
		setup   []step
		do      step
		allowed []string // nil: everything
		wantErr error
		wantOp  string // who Lookup(do.domain) routes to afterwards, at do.at
	}{
		{name: "new name", do: step{"a", "x.test", never, 0}, wantOp: "a"},
		{name: "other operator, live", setup: []step{{"a", "x.test", time.Hour, 0}},
			do: step{"b", "x.test", never, 0}, wantErr: ErrTaken, wantOp: "a"},
		{name: "other operator, no expiry", setup: []step{{"a", "x.test", never, 0}},
			do: step{"b", "x.test", never, 0}, wantErr: ErrTaken, wantOp: "a"},
		{name: "other operator, expired, is replaced", setup: []step{{"a", "x.test", time.Hour, 0}},
			do: step{"b", "x.test", never, 2 * time.Hour}, wantOp: "b"},
		{name: "same operator extends", setup: []step{{"a", "x.test", time.Hour, 0}},
			do: step{"a", "x.test", 3 * time.Hour, 0}, wantOp: "a"},
		{name: "same operator revives expired", setup: []step{{"a", "x.test", time.Hour, 0}},
			do: step{"a", "x.test", 3 * time.Hour, 2 * time.Hour}, wantOp: "a"},
		{name: "past expiry withdraws own", setup: []step{{"a", "x.test", never, 0}},
			do: step{"a", "x.test", -time.Second, 0}, wantOp: ""},
		{name: "expiry equal to now withdraws", setup: []step{{"a", "x.test", never, 0}},
			do: step{"a", "x.test", time.Nanosecond, time.Nanosecond}, wantOp: ""},
		{name: "past expiry of a new name is accepted", do: step{"a", "x.test", -time.Hour, 0}, wantOp: ""},
		{name: "past expiry cannot withdraw another's", setup: []step{{"a", "x.test", never, 0}},
			do: step{"b", "x.test", -time.Hour, 0}, wantErr: ErrTaken, wantOp: "a"},
		{name: "expiry exactly 7 days", do: step{"a", "x.test", MaxExpiry, 0}, wantOp: "a"},
		{name: "expiry beyond 7 days", do: step{"a", "x.test", MaxExpiry + time.Second, 0}, wantErr: ErrExpiry},
		{name: "expiry beyond 7 days keeps the old one", setup: []step{{"a", "x.test", time.Hour, 0}},
			do: step{"a", "x.test", MaxExpiry + time.Second, 0}, wantErr: ErrExpiry, wantOp: "a"},
		{name: "invalid name", do: step{"a", "x..test", never, 0}, wantErr: ErrInvalid},
		{name: "not allowed", allowed: []string{".internal-server.local"},
			do: step{"a", "x.test", never, 0}, wantErr: ErrNotAllowed},
		{name: "allowed strictly under", allowed: []string{".internal-server.local"},
			do: step{"a", "app.internal-server.local", never, 0}, wantOp: "a"},
		{name: "allowed base itself not strictly under", allowed: []string{".internal-server.local"},
			do: step{"a", "internal-server.local", never, 0}, wantErr: ErrNotAllowed},
		{name: "wildcard covered", allowed: []string{".internal-server.local"},
			do: step{"a", "*.internal-server.local", never, 0}, wantOp: "a"},
		{name: "wildcard too wide", allowed: []string{".internal-server.local"},
			do: step{"a", "*.local", never, 0}, wantErr: ErrNotAllowed},
		{name: "not allowed wins over taken", allowed: []string{".elsewhere.test"},
			setup: []step{{"a", "x.test", never, 0}}, do: step{"b", "x.test", never, 0}, wantErr: ErrNotAllowed, wantOp: "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Options{})
			for _, s := range tc.setup {
				exp := time.Time{}
				if s.exp != 0 {
					exp = t0.Add(s.exp)
				}
				mustAnnounce(t, tb, s.op, s.domain, exp, t0.Add(s.at))
			}
			allowed := tc.allowed
			if allowed == nil {
				allowed = everything
			}
			exp := time.Time{}
			if tc.do.exp != 0 {
				exp = t0.Add(tc.do.exp)
			}
			now := t0.Add(tc.do.at)
			err := tb.Announce(tc.do.op, allowed, []Item{{Domain: tc.do.domain, ExpiresAt: exp}}, now)[0]
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Announce: %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.do.domain) {
				t.Errorf("error %q does not name the domain %q", err, tc.do.domain)
			}
			host := tc.do.domain
			if strings.HasPrefix(host, "*.") {
				host = "x" + host[1:] // a name the pattern covers
			}
			if got := holder(tb, host, now); got != tc.wantOp {
				t.Errorf("after the step %q is routed to %q, want %q", host, got, tc.wantOp)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	tb := New(Options{})
	exp := t0.Add(time.Hour)
	mustAnnounce(t, tb, "a", "x.test", exp, t0)
	mustAnnounce(t, tb, "w", "*.test", exp.Add(time.Hour), t0)

	a, ok := tb.Lookup([]byte("x.test"), exp.Add(-time.Nanosecond))
	if !ok || a.Operator != "a" || !a.ExpiresAt.Equal(exp) {
		t.Fatalf("just before expiry: %+v, %v", a, ok)
	}
	// At the expiry instant the exact entry is dead and the wildcard,
	// still live, takes over.
	if got := holder(tb, "x.test", exp); got != "w" {
		t.Errorf("at expiry x.test goes to %q, want the wildcard holder", got)
	}
	if got := holder(tb, "x.test", exp.Add(time.Hour)); got != "" {
		t.Errorf("after both expired x.test goes to %q", got)
	}

	// Same operator takes the expiry away.
	mustAnnounce(t, tb, "a", "x.test", time.Time{}, t0)
	if a, ok := tb.Lookup([]byte("x.test"), t0.Add(1000*time.Hour)); !ok || !a.ExpiresAt.IsZero() {
		t.Errorf("after re-announcing without expiry: %+v, %v", a, ok)
	}
}

func TestAnnounceBatch(t *testing.T) {
	tb := New(Options{})
	mustAnnounce(t, tb, "other", "taken.test", time.Time{}, t0)
	errs := tb.Announce("op", []string{".test"}, []Item{
		{Domain: "one.test"},
		{Domain: "taken.test"},
		{Domain: "bad name.test"},
		{Domain: "elsewhere.org"},
		{Domain: "two.test", ExpiresAt: t0.Add(8 * 24 * time.Hour)},
		{Domain: "three.test", ExpiresAt: t0.Add(time.Hour)},
		{Domain: "one.test", ExpiresAt: t0.Add(2 * time.Hour)}, // later item updates earlier one
	}, t0)
	want := []error{nil, ErrTaken, ErrInvalid, ErrNotAllowed, ErrExpiry, nil, nil}
	if len(errs) != len(want) {
		t.Fatalf("got %d results for %d items", len(errs), len(want))
	}
	codes := map[error]int{ErrTaken: 409, ErrInvalid: 400, ErrNotAllowed: 403, ErrExpiry: 400}
	for i, w := range want {
		if w == nil {
			if errs[i] != nil {
				t.Errorf("item %d: %v, want ok", i, errs[i])
			}
			continue
		}
		if !errors.Is(errs[i], w) {
			t.Errorf("item %d: %v, want %v", i, errs[i], w)
			continue
		}
		var c Coder
		if !errors.As(errs[i], &c) || c.Code() != codes[w] {
			t.Errorf("item %d: %v: want code %d", i, errs[i], codes[w])
		}
	}
	got := tb.List(t0)
	wantList := []Announcement{
		{Domain: "one.test", Operator: "op", ExpiresAt: t0.Add(2 * time.Hour)},
		{Domain: "taken.test", Operator: "other"},
		{Domain: "three.test", Operator: "op", ExpiresAt: t0.Add(time.Hour)},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantList) {
		t.Errorf("List = %v\nwant %v", got, wantList)
	}
}

func TestBadOperator(t *testing.T) {
	tb := New(Options{})
	errs := tb.Announce("bad operator", everything, []Item{{Domain: "a.test"}, {Domain: "b.test"}}, t0)
	for i, err := range errs {
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "bad operator") {
			t.Errorf("item %d: %v, want ErrInvalid naming the operator", i, err)
		}
	}
	if tb.Len() != 0 {
		t.Errorf("table holds %d entries after a refused batch", tb.Len())
	}
}

func TestCaps(t *testing.T) {
	tb := New(Options{MaxEntries: 5, MaxPerOperator: 3})
	for i := 0; i < 3; i++ {
		mustAnnounce(t, tb, "a", fmt.Sprintf("a%d.test", i), time.Time{}, t0)
	}
	err := announce(tb, "a", "a3.test", time.Time{}, t0)
	var c Coder
	if !errors.Is(err, ErrFull) || !errors.As(err, &c) || c.Code() != 507 || !strings.Contains(err.Error(), "a3.test") {
		t.Fatalf("4th name of one operator: %v, want ErrFull (507) naming the domain", err)
	}
	// Updating an existing name is not growth.
	mustAnnounce(t, tb, "a", "a0.test", t0.Add(time.Hour), t0)

	mustAnnounce(t, tb, "b", "b0.test", time.Time{}, t0)
	mustAnnounce(t, tb, "b", "b1.test", t0.Add(time.Minute), t0)
	if err := announce(tb, "c", "c0.test", time.Time{}, t0); !errors.Is(err, ErrFull) {
		t.Fatalf("6th name in a table of 5: %v, want ErrFull", err)
	}
	if tb.Len() != 5 {
		t.Fatalf("Len = %d, want 5", tb.Len())
	}
	// Once b1 has expired, its room is reclaimed without an explicit Purge.
	later := t0.Add(2 * time.Minute)
	if err := announce(tb, "c", "c0.test", time.Time{}, later); err != nil {
		t.Fatalf("announce after an entry expired in a full table: %v", err)
	}
	if tb.Len() != 5 || holder(tb, "c0.test", later) != "c" {
		t.Errorf("Len = %d, c0.test -> %q", tb.Len(), holder(tb, "c0.test", later))
	}
	// Withdrawing frees an operator's room.
	if err := tb.Withdraw("a", "a1.test"); err != nil {
		t.Fatal(err)
	}
	mustAnnounce(t, tb, "a", "a3.test", time.Time{}, later)
}

func TestPerOperatorCapCountsReplacedEntries(t *testing.T) {
	tb := New(Options{MaxEntries: 10, MaxPerOperator: 1})
	mustAnnounce(t, tb, "a", "x.test", t0.Add(time.Minute), t0)
	later := t0.Add(time.Hour)
	// b takes over a's dead entry: the table does not grow, but b does.
	mustAnnounce(t, tb, "b", "x.test", time.Time{}, later)
	if err := announce(tb, "b", "y.test", time.Time{}, later); !errors.Is(err, ErrFull) {
		t.Errorf("b's second name: %v, want ErrFull", err)
	}
	// a no longer holds anything, so it has room again.
	mustAnnounce(t, tb, "a", "z.test", time.Time{}, later)
}

func TestWithdraw(t *testing.T) {
	tb := New(Options{})
	mustAnnounce(t, tb, "a", "x.test", time.Time{}, t0)
	mustAnnounce(t, tb, "b", "y.test", time.Time{}, t0)

	err := tb.Withdraw("a", "y.test")
	var c Coder
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &c) || c.Code() != 404 {
		t.Errorf("withdrawing another operator's name: %v, want ErrNotFound", err)
	}
	if holder(tb, "y.test", t0) != "b" {
		t.Error("another operator's withdraw removed b's name")
	}
	if err := tb.Withdraw("a", "nothing.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("withdrawing an unknown name: %v", err)
	}
	if err := tb.Withdraw("a", "bad name"); !errors.Is(err, ErrInvalid) {
		t.Errorf("withdrawing a bad name: %v", err)
	}
	if err := tb.Withdraw("a", "X.Test."); err != nil {
		t.Errorf("withdrawing own name in another spelling: %v", err)
	}
	if holder(tb, "x.test", t0) != "" || tb.Len() != 1 {
		t.Errorf("after withdraw: x.test -> %q, Len %d", holder(tb, "x.test", t0), tb.Len())
	}
	// The name is free for others now.
	mustAnnounce(t, tb, "b", "x.test", time.Time{}, t0)
}

func TestListAndPurge(t *testing.T) {
	tb := New(Options{})
	mustAnnounce(t, tb, "a", "c.test", time.Time{}, t0)
	mustAnnounce(t, tb, "a", "a.test", t0.Add(time.Hour), t0)
	mustAnnounce(t, tb, "b", "b.test", t0.Add(2*time.Hour), t0)

	names := func(as []Announcement) string {
		var s []string
		for _, a := range as {
			s = append(s, a.Domain+"="+a.Operator)
		}
		return strings.Join(s, ",")
	}
	if got := names(tb.List(t0)); got != "a.test=a,b.test=b,c.test=a" {
		t.Errorf("List = %s", got)
	}
	at := t0.Add(90 * time.Minute)
	if got := names(tb.List(at)); got != "b.test=b,c.test=a" {
		t.Errorf("List after a.test expired = %s", got)
	}
	if tb.Len() != 3 {
		t.Errorf("Len before purge = %d, want 3 (expired entries stay until purged)", tb.Len())
	}
	if live, expired := tb.Counts(at); live != 2 || expired != 1 {
		t.Errorf("Counts before purge = %d live, %d expired; want 2 and 1", live, expired)
	}
	if n := tb.Purge(at); n != 1 {
		t.Errorf("Purge dropped %d, want 1", n)
	}
	if tb.Len() != 2 {
		t.Errorf("Len after purge = %d", tb.Len())
	}
	if live, expired := tb.Counts(at); live != 2 || expired != 0 {
		t.Errorf("Counts after purge = %d live, %d expired; want 2 and 0", live, expired)
	}
	if n := tb.Purge(at); n != 0 {
		t.Errorf("second Purge dropped %d", n)
	}
	// Purging an empty or zero table is harmless.
	var zero Table
	if live, expired := zero.Counts(t0); zero.Purge(t0) != 0 || zero.List(t0) != nil || zero.Len() != 0 || live != 0 || expired != 0 {
		t.Error("zero Table is not empty")
	}
}

func TestZeroTableIsUsable(t *testing.T) {
	var tb Table
	if _, ok := tb.Lookup([]byte("x.test"), t0); ok {
		t.Fatal("empty table matched")
	}
	mustAnnounce(t, &tb, "a", "x.test", time.Time{}, t0)
	if holder(&tb, "x.test", t0) != "a" {
		t.Fatal("zero table did not store an announcement")
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tb := New(Options{})
	mustAnnounce(t, tb, "a", "x.test", time.Time{}, t0)
	mustAnnounce(t, tb, "a", "dead.test", t0.Add(time.Minute), t0)
	mustAnnounce(t, tb, "w", "*.wild.test", t0.Add(time.Hour), t0)
	later := t0.Add(2 * time.Minute)
	for _, host := range []string{"x.test", "a.wild.test", "dead.test", "missing.test", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.long-enough-to-fill-blocks.test", "single"} {
		name := []byte(host)
		var ok bool
		allocs := testing.AllocsPerRun(200, func() {
			_, ok = tb.Lookup(name, later)
		})
		if allocs != 0 {
			t.Errorf("Lookup(%q) allocates %.1f times per call", host, allocs)
		}
		_ = ok
	}
	if holder(tb, "a.wild.test", later) != "w" || holder(tb, "dead.test", later) != "" {
		t.Error("lookups used for the allocation check do not behave")
	}
}

// TestHashCollision stores two names under the same hash (impossible to
// find with real xxhash values, so it is forced) and checks that the
// stored name, not the hash, decides.
func TestHashCollision(t *testing.T) {
	tb := New(Options{})
	tb.initLocked()
	h := hashName("b.test")
	w := tb.writer(tb.snap.Load(), tb.ops, t0)
	w.b.put(h, entry{name: "a.test", operator: "a", expires: noExpiry})
	w.b.put(h, entry{name: "b.test", operator: "b", expires: noExpiry})
	w.b.put(h, entry{name: "c.test", operator: "c", expires: noExpiry})
	tb.publish(w)
	if got := holder(tb, "b.test", t0); got != "b" {
		t.Errorf("b.test -> %q, want b", got)
	}
	if tb.Len() != 3 {
		t.Errorf("Len = %d, want 3", tb.Len())
	}
	// a.test is stored under the wrong hash, so its own lookup misses:
	// proof that a hash hit alone never matches.
	if got := holder(tb, "a.test", t0); got != "" {
		t.Errorf("a.test -> %q, want no match", got)
	}
	w = tb.writer(tb.snap.Load(), tb.ops, t0)
	w.b.remove(h, "b.test")
	tb.publish(w)
	if got := holder(tb, "b.test", t0); got != "" {
		t.Errorf("b.test after removal -> %q", got)
	}
	w = tb.writer(tb.snap.Load(), tb.ops, t0)
	for _, n := range []string{"a.test", "c.test"} {
		if e, ok := w.b.get(h, n); !ok || e.name != n {
			t.Errorf("chain lost %s: %+v %v", n, e, ok)
		}
	}
	if tb.Len() != 2 {
		t.Errorf("Len = %d, want 2", tb.Len())
	}
}

package matcher

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and limits.
const (
	// MaxExpiry is how far ahead of now an announcement may expire, as in
	// the original EPS proxy.
	MaxExpiry = 7 * 24 * time.Hour
	// DefaultMaxEntries caps the whole table: about 160 MB of heap when
	// full of 30-byte names.
	DefaultMaxEntries = 1_000_000
	// DefaultMaxPerOperator caps what one operator may hold, so a single
	// private proxy cannot fill the table for everyone else.
	DefaultMaxPerOperator = 100_000
	// defaultShards splits each snapshot so that one announcement copies
	// about 1/1024 of the table instead of all of it; lookups cost the same
	// whatever the count. BenchmarkAnnounceOne measures the trade-off, and
	// BENCHMARKS.md has its figures.
	defaultShards = 1024
)

// Options bounds a Table. Zero fields take their defaults.
type Options struct {
	MaxEntries     int // stored announcements in all; default DefaultMaxEntries
	MaxPerOperator int // stored announcements per operator; default DefaultMaxPerOperator
}

// Announcement is one name announced by one operator.
type Announcement struct {
	// Domain is the normalised name, or a wildcard pattern "*.parent".
	Domain string
	// Operator is the EPS operator name of the private proxy that
	// announced the name.
	Operator string
	// ExpiresAt is when the announcement stops matching; zero means never.
	ExpiresAt time.Time
}

// Item is one name in an Announce batch.
type Item struct {
	Domain    string    // need not be normalised
	ExpiresAt time.Time // zero: no expiry; at or before now: withdraw
}

// Table is the announcement table. Lookups read an immutable snapshot
// through one atomic pointer, so they never wait for writers; writers are
// serialised by a mutex and publish each batch as one new snapshot.
//
// The zero value is an empty table with default Options. A Table must not
// be copied after first use.
type Table struct {
	snap   atomic.Pointer[snapshot]
	shards int // power of two; 0 means defaultShards

	mu   sync.Mutex     // serialises writers
	opts Options        // guarded by mu after New
	ops  map[string]int // stored entries per operator; guarded by mu

	saveMu sync.Mutex // keeps Saves in snapshot order
}

// New returns an empty table bounded by opts.
func New(opts Options) *Table {
	return &Table{opts: opts}
}

// initLocked fills in defaults on first write. Called with mu held.
func (t *Table) initLocked() {
	if t.opts.MaxEntries <= 0 {
		t.opts.MaxEntries = DefaultMaxEntries
	}
	if t.opts.MaxPerOperator <= 0 {
		t.opts.MaxPerOperator = DefaultMaxPerOperator
	}
	if t.ops == nil {
		t.ops = make(map[string]int)
	}
	if t.snap.Load() == nil {
		t.snap.Store(emptySnapshot(t.shardCount()))
	}
}

func (t *Table) shardCount() int {
	if t.shards <= 0 {
		return defaultShards
	}
	return t.shards
}

// Lookup returns the live announcement matching host, an SNI name already
// normalised (see AppendNormalized): the announcement of host itself if
// there is a live one, else the live wildcard "*.parent" for its parent.
// The returned Domain is the matched entry, so it is the pattern for a
// wildcard match. host is not retained.
//
// Lookup never blocks, never allocates, and is safe to call from any
// number of goroutines concurrently with each other and with writers; it
// sees the table as of the last completed write.
func (t *Table) Lookup(host []byte, now time.Time) (Announcement, bool) {
	s := t.snap.Load()
	if s == nil {
		return Announcement{}, false
	}
	e, ok := s.lookup(host, now.UnixNano())
	if !ok {
		return Announcement{}, false
	}
	return e.announcement(), true
}

// Len returns how many announcements are stored, including expired ones
// not yet purged. Safe for concurrent use; never blocks.
func (t *Table) Len() int {
	s := t.snap.Load()
	if s == nil {
		return 0
	}
	return s.count
}

// Counts returns how many stored announcements are live at now and how
// many have expired and wait for a Purge (Len is their sum). It reads one
// snapshot in one pass and allocates nothing. Safe for concurrent use;
// never blocks writers or readers.
func (t *Table) Counts(now time.Time) (live, expired int) {
	s := t.snap.Load()
	if s == nil {
		return 0, 0
	}
	n := now.UnixNano()
	s.each(func(e entry) {
		if n < e.expires {
			live++
		}
	})
	return live, s.count - live
}

// Announce applies items for operator, whose allowed-domains list (from
// the EPS directory) is allowed, and returns one result per item, nil for
// success. Each item is checked on its own, by these rules in this order
// (the first broken one is reported):
//
//   - ErrInvalid: bad name (or bad operator name, reported on every item);
//   - ErrNotAllowed: not permitted by allowed (see Allowed);
//   - ErrExpiry: ExpiresAt more than MaxExpiry after now;
//   - ErrTaken: another operator holds a live announcement of the name.
//     A dead (expired) one does not count: it is replaced;
//   - ErrFull: storing it would exceed MaxEntries or MaxPerOperator, even
//     after dropping expired entries.
//
// An accepted item stores the name for operator, or updates the expiry of
// operator's own announcement (a zero ExpiresAt removes the expiry). An
// expiry at or before now is accepted and means "already expired": it
// withdraws operator's announcement of that name (and clears a dead one
// of another operator); nothing is stored for it.
//
// All accepted items become visible to Lookup together, in one snapshot
// swap. Safe for concurrent use; writers are serialised and never delay
// readers.
func (t *Table) Announce(operator string, allowed []string, items []Item, now time.Time) []error {
	names, errs := Check(operator, allowed, items, now)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	w := t.writer(t.snap.Load(), t.ops, now)
	for i, it := range items {
		if errs[i] == nil {
			errs[i] = w.apply(operator, names[i], it.Domain, it.ExpiresAt)
		}
	}
	t.publish(w)
	return errs
}

// Withdraw removes operator's own announcement of domain, live or expired.
// It returns ErrNotFound if operator holds no announcement of that name
// (an announcement of another operator is left alone). Safe for concurrent
// use; the change is visible to Lookup when Withdraw returns.
func (t *Table) Withdraw(operator, domain string) error {
	name, err := Normalize(domain)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	w := t.writer(t.snap.Load(), t.ops, time.Time{})
	h := hashName(name)
	cur, ok := w.b.get(h, name)
	if !ok || cur.operator != operator {
		return newError(ErrNotFound, domain, "no announcement by operator "+strconv.Quote(operator))
	}
	w.drop(h, cur)
	t.publish(w)
	return nil
}

// Purge drops every announcement expired at now and returns how many it
// dropped. Expired entries never match anyway; purging frees their room
// (Announce also purges by itself when a cap is reached). Safe for
// concurrent use.
func (t *Table) Purge(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	w := t.writer(t.snap.Load(), t.ops, now)
	n := w.purge()
	t.publish(w)
	return n
}

// List returns the announcements live at now, sorted by domain. It reads
// one snapshot, so the list is consistent. Safe for concurrent use; never
// blocks writers or readers.
func (t *Table) List(now time.Time) []Announcement {
	s := t.snap.Load()
	if s == nil {
		return nil
	}
	n := now.UnixNano()
	var out []Announcement
	s.each(func(e entry) {
		if n < e.expires {
			out = append(out, e.announcement())
		}
	})
	sortByDomain(out)
	return out
}

func sortByDomain(as []Announcement) {
	slices.SortFunc(as, func(a, b Announcement) int { return strings.Compare(a.Domain, b.Domain) })
}

// writer returns the state for one write: a batch over s and the operator
// counts it will update in place. Called with mu held.
func (t *Table) writer(s *snapshot, ops map[string]int, now time.Time) *writer {
	return &writer{b: newBatch(s), ops: ops, opts: t.opts, now: now}
}

// publish makes the batch visible in one atomic swap. Called with mu held.
func (t *Table) publish(w *writer) {
	if w.b.changed {
		t.snap.Store(w.b.snapshot())
	}
}

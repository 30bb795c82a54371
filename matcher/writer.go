package matcher

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// writer applies the announcement rules to one batch. It holds the
// operator counts by reference and updates them as it goes: every item
// succeeds or fails on its own, so there is nothing to roll back, and the
// batch is always published at the end.
type writer struct {
	b      *batch
	ops    map[string]int
	opts   Options
	now    time.Time
	purged bool              // expired entries already dropped in this batch
	names  map[string]string // operator names interned for this batch
}

// apply stores, updates or withdraws the normalised name for operator
// (given is the caller's spelling, for error messages). Permission checks
// are the caller's job.
func (w *writer) apply(operator, name, given string, expiresAt time.Time) error {
	now := w.now.UnixNano()
	exp := int64(noExpiry)
	if !expiresAt.IsZero() {
		switch {
		case expiresAt.After(w.now.Add(MaxExpiry)):
			return newError(ErrExpiry, given, "expires "+expiresAt.UTC().Format(time.RFC3339))
		case !expiresAt.After(w.now):
			exp = math.MinInt64 // already expired: a withdrawal
		default:
			exp = expiresAt.UnixNano()
		}
	}

	h := hashName(name)
	cur, exists := w.b.get(h, name)
	if exists && cur.operator != operator && now < cur.expires {
		return newError(ErrTaken, given, "announced by another operator")
	}
	if exp <= now {
		if exists {
			w.drop(h, cur)
		}
		return nil
	}
	if exists && cur.operator == operator {
		cur.expires = exp
		w.b.put(h, cur)
		return nil
	}

	// operator gains an entry; the table does too unless it replaces a
	// dead one of another operator.
	if w.full(operator, exists) != "" && !w.purged {
		w.purge()
		cur, exists = w.b.get(h, name)
	}
	if why := w.full(operator, exists); why != "" {
		return newError(ErrFull, given, why)
	}
	if exists {
		w.drop(h, cur)
	}
	op := w.intern(operator)
	w.b.put(h, entry{name: strings.Clone(name), operator: op, expires: exp})
	w.ops[op]++
	return nil
}

// full says which cap one more entry for operator would break, or "".
func (w *writer) full(operator string, replacing bool) string {
	if !replacing && w.b.count >= w.opts.MaxEntries {
		return fmt.Sprintf("the table holds %d announcements, its limit", w.b.count)
	}
	if n := w.ops[operator]; n >= w.opts.MaxPerOperator {
		return fmt.Sprintf("operator %q holds %d announcements, its limit", operator, n)
	}
	return ""
}

// drop removes the stored entry cur and uncounts it.
func (w *writer) drop(h uint64, cur entry) {
	w.b.remove(h, cur.name)
	w.uncount(cur.operator)
}

func (w *writer) uncount(op string) {
	if w.ops[op] <= 1 {
		delete(w.ops, op) // keeps the map as small as the set of holders
		return
	}
	w.ops[op]--
}

// purge drops every entry expired at w.now and returns how many.
func (w *writer) purge() int {
	w.purged = true
	n := 0
	w.b.purge(w.now.UnixNano(), func(e entry) {
		w.uncount(e.operator)
		n++
	})
	return n
}

// intern makes every entry of one operator in this batch share one copy of
// its name, detached from the caller's buffers.
func (w *writer) intern(op string) string {
	if s, ok := w.names[op]; ok {
		return s
	}
	if w.names == nil {
		w.names = make(map[string]string)
	}
	s := strings.Clone(op)
	w.names[s] = s
	return s
}

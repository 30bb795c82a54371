package matcher

import (
	"strconv"
	"time"
)

// A table may mirror a store that several processes share (the public proxy's cluster store):
// the store applies the announcement rules that need every process's view (taken, full) in one
// atomic step, each process checks the rules that need no shared state (Check) before asking
// it, and mirrors what the store decided (Mirror, Replace). Lookups never reach the store.

// Check applies the rules that need no table to each item of operator's batch, in Announce's
// order: the name's syntax (ErrInvalid), the caller's allowed domains (ErrNotAllowed) and the
// expiry cap (ErrExpiry). names[i] is the normalised name of an item that passed, errs[i] the
// refusal of one that did not. Safe for concurrent use; it touches no table.
func Check(operator string, allowed []string, items []Item, now time.Time) (names []string, errs []error) {
	names = make([]string, len(items))
	errs = make([]error, len(items))
	if err := checkOperator(operator); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return names, errs
	}
	rules := parseRules(allowed)
	for i, it := range items {
		name, err := Normalize(it.Domain)
		switch {
		case err != nil:
			errs[i] = err
		case !permitted(rules, name):
			errs[i] = newError(ErrNotAllowed, it.Domain, "not under any domain operator "+strconv.Quote(operator)+" may announce")
		case it.ExpiresAt.After(now.Add(MaxExpiry)):
			errs[i] = newError(ErrExpiry, it.Domain, "expires "+it.ExpiresAt.UTC().Format(time.RFC3339))
		default:
			names[i] = name
		}
	}
	return names, errs
}

// Refusal returns the error Announce would give for domain with kind, one of ErrTaken, ErrFull,
// ErrNotFound, ErrInvalid, ErrExpiry or ErrNotAllowed, for a store that decided it elsewhere.
// Any other kind is reported as ErrInvalid.
func Refusal(k error, domain, reason string) *Error {
	if _, ok := k.(*kind); !ok {
		k = ErrInvalid
	}
	return newError(k, domain, reason)
}

// Mirror installs what a shared store decided: every announcement in set is stored as given
// (replacing any of the same name, whoever held it), and every name in del is removed. No rule
// is applied: the store applied them. Entries whose domain or operator breaks the naming rules
// are skipped and counted in the result, so a corrupt store cannot poison lookups. All changes
// become visible together. Safe for concurrent use.
func (t *Table) Mirror(set []Announcement, del []string) (skipped int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	w := t.writer(t.snap.Load(), t.ops, time.Time{})
	for _, name := range del {
		h := hashName(name)
		if cur, ok := w.b.get(h, name); ok {
			w.drop(h, cur)
		}
	}
	for _, a := range set {
		if !w.install(a) {
			skipped++
		}
	}
	t.publish(w)
	return skipped
}

// Replace makes the table hold exactly all (a full copy of a shared store), as one snapshot
// swap. Invalid entries are skipped and counted as in Mirror. Safe for concurrent use.
func (t *Table) Replace(all []Announcement) (skipped int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	clear(t.ops)
	w := t.writer(emptySnapshot(t.shardCount()), t.ops, time.Time{})
	w.b.changed = true // an empty store empties the table too
	for _, a := range all {
		if !w.install(a) {
			skipped++
		}
	}
	t.publish(w)
	return skipped
}

// install stores a as given; false if its names are invalid.
func (w *writer) install(a Announcement) bool {
	name, err := Normalize(a.Domain)
	if err != nil || name != a.Domain || checkOperator(a.Operator) != nil {
		return false
	}
	exp := int64(noExpiry)
	if !a.ExpiresAt.IsZero() {
		exp = a.ExpiresAt.UnixNano()
	}
	h := hashName(name)
	if cur, ok := w.b.get(h, name); ok {
		if cur.operator == a.Operator && cur.expires == exp {
			return true
		}
		w.drop(h, cur)
	}
	op := w.intern(a.Operator)
	w.b.put(h, entry{name: name, operator: op, expires: exp})
	w.ops[op]++
	return true
}

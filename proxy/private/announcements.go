package private

import (
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"epsproxy/matcher"
)

// key identifies an announcement: one name towards one public proxy.
type key struct{ domain, proxy string }

// announcements is the set of names this proxy serves. Readers (relay loops routing a standby
// client, EPS handlers, the announcer, the standby manager) load an immutable snapshot through
// one atomic pointer and never wait. Writers copy the map, publish the copy, and then save the
// file with no lock a reader could want: disk I/O (fsync of the file and its directory) never
// holds up a loop.
type announcements struct {
	cur  atomic.Pointer[map[key]Announcement]
	mu   sync.Mutex // serialises writers; readers never take it
	save sync.Mutex // serialises saves, so the file ends with the newest snapshot
	path string
	// write persists a list; saveStore outside tests, which may hold it open.
	write func(path string, list []Announcement) error
}

func newAnnouncements(path string) *announcements {
	as := &announcements{path: path, write: saveStore}
	as.cur.Store(&map[key]Announcement{})
	return as
}

// snapshot is the current set. It must not be modified.
func (as *announcements) snapshot() map[key]Announcement { return *as.cur.Load() }

// get returns the live announcement of exactly domain (a name or a pattern) to proxy.
func (as *announcements) get(domain, proxy string, now time.Time) (Announcement, bool) {
	a, ok := as.snapshot()[key{domain, proxy}]
	return a, ok && live(a, now)
}

// match finds the live announcement to proxy that serves the host name, by matcher's rule (the
// name, else the wildcard of its parent), as the public proxy's table matched it. It runs on
// relay loops: it reads the snapshot and nothing else.
func (as *announcements) match(host, proxy string, now time.Time) (Announcement, bool) {
	snap := as.snapshot()
	return matcher.Match(host, func(name string) (Announcement, bool) {
		a, ok := snap[key{name, proxy}]
		return a, ok && live(a, now)
	})
}

// liveList returns the live announcements, sorted by domain and public proxy.
func (as *announcements) liveList(now time.Time) []Announcement {
	out := []Announcement{}
	for _, a := range as.snapshot() {
		if live(a, now) {
			out = append(out, a)
		}
	}
	sortAnnouncements(out)
	return out
}

// update applies change to a copy of the set, publishes the copy, and saves the file. When
// change returns an error, nothing is published or saved and update returns it: the check and
// the change see the same set, whatever other writers do.
func (as *announcements) update(change func(m map[key]Announcement) error) error {
	as.mu.Lock()
	next := maps.Clone(as.snapshot())
	if err := change(next); err != nil {
		as.mu.Unlock()
		return err
	}
	as.cur.Store(&next)
	as.mu.Unlock()
	return as.persist()
}

// persist writes the current snapshot. Saves run one at a time and each writes the snapshot
// current when it starts, so after concurrent updates the file holds the newest set.
func (as *announcements) persist() error {
	as.save.Lock()
	defer as.save.Unlock()
	list := make([]Announcement, 0, len(as.snapshot()))
	for _, a := range as.snapshot() {
		list = append(list, a)
	}
	sortAnnouncements(list)
	return as.write(as.path, list)
}

func sortAnnouncements(list []Announcement) {
	sort.Slice(list, func(i, j int) bool {
		if list[i].Domain != list[j].Domain {
			return list[i].Domain < list[j].Domain
		}
		return list[i].Proxy < list[j].Proxy
	})
}

func live(a Announcement, now time.Time) bool {
	return a.ExpiresAt == nil || a.ExpiresAt.After(now)
}

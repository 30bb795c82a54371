package matcher

import (
	"math"
	"time"

	"github.com/cespare/xxhash/v2"
)

// noExpiry is the stored expiry of an announcement without one, so that
// "live" is the single comparison now < expires on the hot path.
const noExpiry = math.MaxInt64

// entry is one stored announcement. Entries are immutable once published
// in a snapshot: writers replace them, never modify them.
type entry struct {
	name     string // normalised; "*.parent" for a wildcard
	operator string
	expires  int64  // Unix nanoseconds, or noExpiry
	next     *entry // another name with the same 64-bit hash (practically never)
}

func (e entry) announcement() Announcement {
	a := Announcement{Domain: e.name, Operator: e.operator}
	if e.expires != noExpiry {
		a.ExpiresAt = time.Unix(0, e.expires).UTC()
	}
	return a
}

// snapshot is an immutable view of the whole table. Readers load it with
// one atomic pointer read and never see it change. It is split into shards
// by hash so that a write copies only the shards it touches, not the whole
// table (see BenchmarkAnnounceOne for the figures behind the shard count).
type snapshot struct {
	shards []map[uint64]entry // len is a power of two
	mask   uint64
	count  int // stored entries, live or not
}

func emptySnapshot(shards int) *snapshot {
	return &snapshot{shards: make([]map[uint64]entry, shards), mask: uint64(shards - 1)}
}

func hashName(name string) uint64 { return xxhash.Sum64String(name) }

// lookup finds the live announcement matching the normalised host name:
// the exact name first, then the wildcard of its parent. It must not
// allocate: it runs for every new client connection. The entry comes back
// by value because a pointer into the local copy of a map value would move
// that copy to the heap.
func (s *snapshot) lookup(name []byte, now int64) (entry, bool) {
	if len(name) == 0 || name[0] == '*' {
		// A client asking for "*.x" literally must not reach whoever
		// announced the pattern.
		return entry{}, false
	}
	h := xxhash.Sum64(name)
	if head, ok := s.shards[h&s.mask][h]; ok {
		for e := &head; e != nil; e = e.next {
			if e.name == string(name) {
				if now < e.expires {
					return *e, true
				}
				break
			}
		}
	}
	parent, ok := wildcardParent(name)
	if !ok {
		return entry{}, false
	}
	// Hash "*." + parent without building it: the streaming digest gives
	// the same value as hashing the stored pattern in one piece.
	var d xxhash.Digest
	d.Reset()
	d.WriteString(wildPrefix)
	d.Write(parent)
	h = d.Sum64()
	if head, ok := s.shards[h&s.mask][h]; ok {
		for e := &head; e != nil; e = e.next {
			if len(e.name) == len(parent)+len(wildPrefix) &&
				e.name[:len(wildPrefix)] == wildPrefix &&
				e.name[len(wildPrefix):] == string(parent) {
				if now < e.expires {
					return *e, true
				}
				break
			}
		}
	}
	return entry{}, false
}

// each calls f for every stored entry, in no particular order.
func (s *snapshot) each(f func(e entry)) {
	for _, m := range s.shards {
		for _, head := range m {
			for e := &head; e != nil; e = e.next {
				f(*e)
			}
		}
	}
}

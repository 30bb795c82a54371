package matcher

import "maps"

// batch is a writer's private, copy-on-write view of a snapshot. The first
// change to a shard clones it; later changes in the same batch edit the
// clone in place, which is safe because no reader can see it before
// publish. One batch becomes one new snapshot, so readers see all of its
// changes or none.
type batch struct {
	shards  []map[uint64]entry
	owned   []bool // shards already cloned by this batch
	count   int
	changed bool
}

func newBatch(s *snapshot) *batch {
	return &batch{
		shards: append([]map[uint64]entry(nil), s.shards...),
		owned:  make([]bool, len(s.shards)),
		count:  s.count,
	}
}

func (b *batch) shard(h uint64) map[uint64]entry {
	return b.shards[h&uint64(len(b.shards)-1)]
}

// writable returns the batch's own copy of the shard holding h.
func (b *batch) writable(h uint64) map[uint64]entry {
	i := h & uint64(len(b.shards)-1)
	if !b.owned[i] {
		if b.shards[i] == nil {
			b.shards[i] = make(map[uint64]entry)
		} else {
			b.shards[i] = maps.Clone(b.shards[i])
		}
		b.owned[i] = true
	}
	b.changed = true
	return b.shards[i]
}

func (b *batch) get(h uint64, name string) (entry, bool) {
	head, ok := b.shard(h)[h]
	if !ok {
		return entry{}, false
	}
	for e := &head; e != nil; e = e.next {
		if e.name == name {
			return *e, true
		}
	}
	return entry{}, false
}

// put stores e under hash h, replacing any entry of the same name.
func (b *batch) put(h uint64, e entry) {
	m := b.writable(h)
	head, ok := m[h]
	if !ok {
		e.next = nil
		m[h] = e
		b.count++
		return
	}
	rest, found := chainWithout(head, e.name)
	e.next = rest
	m[h] = e
	if !found {
		b.count++
	}
}

// remove drops the entry named name from hash h, if there is one.
func (b *batch) remove(h uint64, name string) {
	if _, ok := b.get(h, name); !ok {
		return
	}
	m := b.writable(h)
	rest, _ := chainWithout(m[h], name)
	if rest == nil {
		delete(m, h)
	} else {
		m[h] = *rest
	}
	b.count--
}

// chainWithout returns a fresh copy of the collision chain starting at head
// with the entry named name left out. Published nodes are shared with older
// snapshots, so they are copied rather than relinked.
func chainWithout(head entry, name string) (rest *entry, found bool) {
	var keep []entry
	for e := &head; e != nil; e = e.next {
		if e.name == name {
			found = true
			continue
		}
		keep = append(keep, *e)
	}
	for i := len(keep) - 1; i >= 0; i-- {
		n := keep[i]
		n.next = rest
		rest = &n
	}
	return rest, found
}

// purge drops every entry that is dead at now and calls dropped for each.
func (b *batch) purge(now int64, dropped func(e entry)) {
	type key struct {
		h    uint64
		name string
	}
	for _, m := range b.shards {
		var dead []key
		for h, head := range m {
			for e := &head; e != nil; e = e.next {
				if now >= e.expires {
					dead = append(dead, key{h, e.name})
				}
			}
		}
		for _, k := range dead {
			e, _ := b.get(k.h, k.name)
			b.remove(k.h, k.name)
			dropped(e)
		}
	}
}

// snapshot freezes the batch. The batch must not be used afterwards.
func (b *batch) snapshot() *snapshot {
	return &snapshot{shards: b.shards, mask: uint64(len(b.shards) - 1), count: b.count}
}

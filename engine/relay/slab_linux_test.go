package relay

import "testing"

// A slot named for a queued entry is found by the events registered for it once the loop claims
// it, and comes back for the next entry a generation later (released, or rejected unclaimed), so
// events its old pair's sockets reported still find nothing.
func TestSlotsComeBackAGenerationLater(t *testing.T) {
	var f slots
	var s slab
	find := func(r slotRef) *pair {
		slot, tok := token(r.slot, r.gen, 1)
		return s.lookup(slot, tok)
	}

	first := f.take()
	if first != (slotRef{slot: 0, gen: 0}) {
		t.Fatalf("first slot %+v, want slot 0 generation 0", first)
	}
	if find(first) != nil {
		t.Fatal("a slot named but not claimed yet is found")
	}
	p := s.claim(first)
	p.live = true
	if find(first) != p {
		t.Fatal("the claimed slot is not found through its registration")
	}

	f.put(s.release(first.slot))
	if find(first) != nil {
		t.Fatal("a released slot is still found through its old registration")
	}
	again := f.take()
	if again.slot != first.slot || again.gen != first.gen+1 {
		t.Fatalf("the released slot came back as %+v, want slot %d generation %d", again, first.slot, first.gen+1)
	}
	s.claim(again).live = true
	if find(first) != nil || find(again) == nil {
		t.Fatal("after reuse, the old registration must miss and the new one find the pair")
	}

	// A slot far past the slab's chunks grows it; a rejected entry's slot, never claimed, comes
	// back a generation later too (reject puts it so).
	far := slotRef{slot: 3*slabChunk + 5}
	s.claim(far).live = true
	if find(far) == nil || s.used != far.slot+1 {
		t.Fatalf("slot %d not found after claim (used %d)", far.slot, s.used)
	}
	next := f.take()
	if next.slot != 1 {
		t.Fatalf("a new slot is %d, want 1", next.slot)
	}
	f.put(slotRef{slot: next.slot, gen: next.gen + 1})
	if back := f.take(); back != (slotRef{slot: 1, gen: 1}) {
		t.Fatalf("a rejected slot came back as %+v, want slot 1 generation 1", back)
	}
}

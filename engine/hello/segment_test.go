package hello

import (
	"bytes"
	"errors"
	mrand "math/rand/v2"
	"testing"
)

// TestEveryPrefixIncomplete feeds each real hello as a growing buffer, one
// byte more per call, as a client writing one byte per TCP segment would.
func TestEveryPrefixIncomplete(t *testing.T) {
	for file, raw := range goldenOK(t) {
		t.Run(file, func(t *testing.T) {
			var p Parser
			want, err := p.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			want = clone(want)
			for k := range len(raw) {
				if _, err := p.Parse(raw[:k]); err != ErrIncomplete {
					t.Fatalf("prefix of %d/%d bytes: %v, want ErrIncomplete", k, len(raw), err)
				}
			}
			got, err := p.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameHello(got, want); err != nil {
				t.Fatal(err)
			}
			if got.Length != len(raw) {
				t.Fatalf("Length %d, want %d", got.Length, len(raw))
			}
		})
	}
}

// TestBytesAfterHello: what follows the hello (TLS 1.3 middlebox
// change_cipher_spec, early data) is left to the caller, and Length says where
// the hello stops.
func TestBytesAfterHello(t *testing.T) {
	raw := loadGolden(t, "go126-mlkem.bin")
	var p Parser
	want, err := p.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want = clone(want)
	ccs := []byte{20, 3, 3, 0, 1, 1}
	early := []byte{23, 3, 3, 0, 3, 'a', 'b', 'c'}
	for _, tail := range [][]byte{ccs, append(ccs, early...), {0xff}, bytes.Repeat([]byte{0}, 70000)} {
		got, err := p.Parse(append(bytes.Clone(raw), tail...))
		if err != nil {
			t.Fatalf("with %d trailing bytes: %v", len(tail), err)
		}
		if err := sameHello(got, want); err != nil {
			t.Fatalf("with %d trailing bytes: %v", len(tail), err)
		}
	}
}

// TestRecordFragmentation re-frames each real hello into many records of
// random sizes, including 1-byte fragments, as evasion tools do.
func TestRecordFragmentation(t *testing.T) {
	seed := uint64(mrand.Int64())
	t.Logf("seed %d", seed)
	r := mrand.New(mrand.NewPCG(seed, 1))
	for file, raw := range goldenOK(t) {
		t.Run(file, func(t *testing.T) {
			var p Parser
			single, err := p.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			single = clone(single)
			msg := unframe(t, raw)
			check := func(sizes []int) {
				t.Helper()
				framed := frameSizes(msg, sizes)
				got, err := p.Parse(framed)
				if err != nil {
					t.Fatalf("%d records: %v", len(sizes), err)
				}
				want := single
				want.Records, want.Length = len(sizes), len(framed)
				if err := sameHello(got, want); err != nil {
					t.Fatalf("%d records %v: %v", len(sizes), sizes[:min(len(sizes), 8)], err)
				}
			}
			for range 25 {
				k := 2 + r.IntN(min(40, len(msg)-1))
				if r.IntN(5) == 0 {
					k = 2 + r.IntN(min(DefaultMaxRecords, len(msg))-1)
				}
				check(randomSizes(r, len(msg), k))
			}
			check([]int{1, 1, 1, 1, len(msg) - 4}) // handshake header over four records
			check([]int{len(msg) - 1, 1})
			if len(msg) <= DefaultMaxRecords {
				check(ones(len(msg)))
			} else {
				// Too many records for the default cap; fine once raised.
				if _, err := p.Parse(frameSizes(msg, ones(len(msg)))); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%d one-byte records: %v, want ErrTooLarge", len(msg), err)
				}
				p.MaxRecords = len(msg)
				check(ones(len(msg)))
			}
		})
	}
}

// TestFragmentedPrefixes grows a multi-record hello one byte at a time.
func TestFragmentedPrefixes(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 7))
	msg := unframe(t, loadGolden(t, "go126-mlkem.bin"))
	for _, sizes := range [][]int{randomSizes(r, len(msg), 30), ones(len(msg))} {
		framed := frameSizes(msg, sizes)
		p := Parser{MaxRecords: len(sizes)}
		for k := range len(framed) {
			if _, err := p.Parse(framed[:k]); err != ErrIncomplete {
				t.Fatalf("%d records, prefix %d/%d: %v", len(sizes), k, len(framed), err)
			}
		}
		h, err := p.Parse(framed)
		if err != nil || string(h.ServerName) != "www.example.com" || h.Records != len(sizes) {
			t.Fatalf("%d records: %q, %d records, %v", len(sizes), h.ServerName, h.Records, err)
		}
	}
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

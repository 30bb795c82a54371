package hello

import (
	"fmt"
	"testing"
)

// BenchmarkParse1800 parses real single-record hellos of Go 1.26 clients:
// the default (X25519MLKEM768, ~1.5 KB), with ECH (~1.6 KB) and with
// SecP384r1MLKEM1024 (~1.9 KB, about a Chrome hello's size).
func BenchmarkParse1800(b *testing.B) {
	for _, file := range []string{"go126-mlkem.bin", "go-ech.bin", "go126-p384mlkem1024.bin"} {
		raw := loadGolden(b, file)
		b.Run(fmt.Sprintf("%s/%dB", file, len(raw)), func(b *testing.B) {
			var p Parser
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := p.Parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseMultiRecord parses the default Go hello re-framed into
// several records, which takes the reassembly path.
func BenchmarkParseMultiRecord(b *testing.B) {
	msg := unframe(b, loadGolden(b, "go126-mlkem.bin"))
	for _, records := range []int{2, 8, 64} {
		raw := frameMsg(msg, (len(msg)+records-1)/records)
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			var p Parser
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := p.Parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseIncomplete is the call made on every read while a hello is
// still arriving: half of the default Go hello.
func BenchmarkParseIncomplete(b *testing.B) {
	raw := loadGolden(b, "go126-mlkem.bin")
	half := raw[:len(raw)/2]
	var p Parser
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(half); err != ErrIncomplete {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseTrickle is the adversarial worst case MaxRecords bounds: a
// hello split into as many records as allowed, delivered one byte per read,
// so every call re-walks every record so far. One op is a whole connection:
// the default Go hello in 64 records, then the largest hello the default
// limits allow (16 KiB in 256 records, MaxInput bytes, as many calls).
func BenchmarkParseTrickle(b *testing.B) {
	goMsg := unframe(b, loadGolden(b, "go126-mlkem.bin"))
	for _, c := range []struct {
		msg     []byte
		records int
	}{{goMsg, 64}, {paddedMsg(b, DefaultMaxHandshake), DefaultMaxRecords}} {
		raw := frameMsg(c.msg, (len(c.msg)+c.records-1)/c.records)
		b.Run(fmt.Sprintf("hello=%dB/records=%d/calls=%d", len(c.msg), c.records, len(raw)), func(b *testing.B) {
			p := Parser{MaxRecords: c.records}
			b.ReportAllocs()
			for b.Loop() {
				for k := 1; k < len(raw); k++ {
					if _, err := p.Parse(raw[:k]); err != ErrIncomplete {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

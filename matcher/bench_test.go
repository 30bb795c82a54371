package matcher

import (
	"fmt"
	"testing"
	"time"
)

const (
	benchEntries   = 100_000
	benchOperators = 100  // so no operator hits DefaultMaxPerOperator
	benchWild      = 1000 // wildcard patterns among the entries
	benchKeys      = 4096 // distinct lookup keys, cycled
)

// benchTable builds a table of entries announcements, benchWild of them
// wildcards "*.wzoneN.example.com", split over shards.
func benchTable(b *testing.B, shards, entries int) *Table {
	b.Helper()
	tb := New(Options{})
	tb.shards = shards
	per := entries / benchOperators
	for op := 0; op < benchOperators; op++ {
		items := make([]Item, 0, per)
		for i := op * per; i < (op+1)*per; i++ {
			d := fmt.Sprintf("host%d.zone%d.example.com", i, i%1000)
			if i < benchWild {
				d = fmt.Sprintf("*.wzone%d.example.com", i)
			}
			items = append(items, Item{Domain: d})
		}
		for _, err := range tb.Announce(fmt.Sprintf("private-proxy-%d.ga", op), []string{"example.com"}, items, t0) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	if tb.Len() != entries {
		b.Fatalf("bench table holds %d entries", tb.Len())
	}
	return tb
}

func benchKeysFor(kind string) [][]byte {
	keys := make([][]byte, benchKeys)
	for k := range keys {
		i := benchWild + (k*7919)%(benchEntries-benchWild)
		switch kind {
		case "hit":
			keys[k] = fmt.Appendf(nil, "host%d.zone%d.example.com", i, i%1000)
		case "miss": // same shape, absent, and no wildcard for the parent
			keys[k] = fmt.Appendf(nil, "nohost%d.zone%d.example.com", i, i%1000)
		case "wildcard": // exact lookup misses, the parent's wildcard hits
			keys[k] = fmt.Appendf(nil, "client%d.wzone%d.example.com", i, k%benchWild)
		}
	}
	return keys
}

// BenchmarkLookup measures Lookup in a table of 100,000 announcements, on
// one goroutine and on GOMAXPROCS goroutines at once, for the default
// sharding and for one unsharded map.
func BenchmarkLookup(b *testing.B) {
	for _, shards := range []int{1, defaultShards} {
		tb := benchTable(b, shards, benchEntries)
		for _, kind := range []string{"hit", "miss", "wildcard"} {
			keys := benchKeysFor(kind)
			if _, ok := tb.Lookup(keys[0], t0); ok != (kind != "miss") {
				b.Fatalf("%s key %s: match %v", kind, keys[0], ok)
			}
			b.Run(fmt.Sprintf("shards=%d/%s/serial", shards, kind), func(b *testing.B) {
				b.ReportAllocs()
				now := t0
				for i := 0; b.Loop(); i++ {
					tb.Lookup(keys[i&(benchKeys-1)], now)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
			})
			b.Run(fmt.Sprintf("shards=%d/%s/parallel", shards, kind), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					now := t0
					for i := 0; pb.Next(); i++ {
						tb.Lookup(keys[i&(benchKeys-1)], now)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
			})
		}
	}
}

// BenchmarkAnnounceOne measures one Announce of one name into a table of
// 100,000: the copy-on-write cost. shards=1 is the single-map design that
// copies the whole table on every write.
func BenchmarkAnnounceOne(b *testing.B) {
	for _, shards := range []int{1, 16, 64, 256, 1024} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			benchAnnounceOne(b, benchTable(b, shards, benchEntries))
		})
	}
}

// BenchmarkAnnounceOneFullTable is BenchmarkAnnounceOne at the default
// table cap, where the shard count matters most.
func BenchmarkAnnounceOneFullTable(b *testing.B) {
	for _, shards := range []int{256, 1024, 4096} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			benchAnnounceOne(b, benchTable(b, shards, DefaultMaxEntries-100))
		})
	}
}

func benchAnnounceOne(b *testing.B, tb *Table) {
	allowed := []string{"example.com"}
	items := make([][]Item, 64)
	for i := range items {
		items[i] = []Item{{Domain: fmt.Sprintf("new%d.example.com", i)}}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Alternate expiries so every call changes the table.
		it := items[i%len(items)]
		it[0].ExpiresAt = t0.Add(time.Duration(1+i%2) * time.Hour)
		if err := tb.Announce("bench", allowed, it, t0)[0]; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "announces/s")
}

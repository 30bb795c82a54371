package eps_test

import (
	"context"
	"sync/atomic"
	"testing"
)

// BenchmarkRoutedCall is one call at a time from alpha's service through alpha's node and beta's
// node to beta's service and back: the round trip of one routed call.
func BenchmarkRoutedCall(b *testing.B) {
	n := newNetB(b)
	c := n.clients[alpha]
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Call(ctx, beta, "echo", map[string]int{"i": 1}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoutedCall32 keeps 32 callers busy; calls/s = 1e9 / ns/op.
func BenchmarkRoutedCall32(b *testing.B) {
	n := newNetB(b)
	c := n.clients[alpha]
	ctx := context.Background()
	var failed atomic.Int64
	b.SetParallelism(32 / max(1, runtimeProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Call(ctx, beta, "echo", map[string]int{"i": 1}, nil); err != nil {
				failed.Add(1)
			}
		}
	})
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d calls failed", f)
	}
}

package pki

import (
	"testing"
	"time"
)

func BenchmarkNewCA(b *testing.B) {
	for b.Loop() {
		if _, err := NewCA("Bench Root", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	ca := mustCA(b, "Bench Root")
	for b.Loop() {
		if _, _, err := ca.Issue("public-proxy-1.ga", nil, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDevLayoutWrite measures a full dev set from scratch: what a
// test suite pays for a throwaway PKI in t.TempDir().
func BenchmarkDevLayoutWrite(b *testing.B) {
	for b.Loop() {
		if _, err := DevLayout(b.TempDir(), nil).Write(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDevLayoutRewrite measures the idempotent re-run that make does.
func BenchmarkDevLayoutRewrite(b *testing.B) {
	dir := b.TempDir()
	if _, err := DevLayout(dir, nil).Write(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := DevLayout(dir, nil).Write(); err != nil {
			b.Fatal(err)
		}
	}
}

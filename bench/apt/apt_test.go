package apt

import (
	"context"
	"io"
	"path/filepath"
	"testing"
)

func TestFindAndEnsureAPresentCommand(t *testing.T) {
	p := Find("sh")
	if p == "" || !filepath.IsAbs(p) {
		t.Fatalf("Find(sh) = %q, want an absolute path", p)
	}
	got, err := Ensure(context.Background(), io.Discard, "dash", "sh")
	if err != nil || got != p {
		t.Fatalf("Ensure of a present command: %q, %v; want %q without installing", got, err, p)
	}
}

func TestFindAMissingCommand(t *testing.T) {
	if p := Find("no-such-command-anywhere"); p != "" {
		t.Fatalf("Find of a missing command = %q", p)
	}
}

package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("disk on fire")
	err := WriteFile(p, 0o600, func(w io.Writer) error {
		_, _ = io.WriteString(w, "half of two")
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("failing write: %v", err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "one" {
		t.Errorf("after a failed write the file holds %q, want the previous %q", got, "one")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x"), 0o600, func(io.Writer) error { return nil }); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

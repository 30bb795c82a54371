package matcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleTable(t *testing.T) *Table {
	t.Helper()
	tb := New(Options{})
	mustAnnounce(t, tb, "private-proxy-1.ga", "app.example.com", time.Time{}, t0)
	mustAnnounce(t, tb, "private-proxy-1.ga", "*.example.com", t0.Add(6*24*time.Hour), t0)
	mustAnnounce(t, tb, "private-proxy-2.ga", "db.local", t0.Add(time.Hour), t0)
	mustAnnounce(t, tb, "private-proxy-2.ga", "gone.local", t0.Add(time.Minute), t0)
	return tb
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "announcements.json")
	src := sampleTable(t)
	if err := src.Save(path); err != nil {
		t.Fatal(err)
	}
	dst := New(Options{})
	rep, err := dst.Load(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Loaded != 4 || rep.Expired != 0 || rep.Invalid != 0 || len(rep.Errors) != 0 {
		t.Errorf("report %+v, want 4 loaded and nothing else", rep)
	}
	if got, want := fmt.Sprint(dst.List(t0)), fmt.Sprint(src.List(t0)); got != want {
		t.Errorf("after round trip List =\n%s\nwant\n%s", got, want)
	}
	if holder(dst, "www.example.com", t0) != "private-proxy-1.ga" || holder(dst, "db.local", t0) != "private-proxy-2.ga" {
		t.Error("loaded table does not route like the saved one")
	}
	// Ownership survives: another operator still cannot take the name.
	if err := announce(dst, "intruder", "db.local", time.Time{}, t0); !errors.Is(err, ErrTaken) {
		t.Errorf("taking a loaded name: %v, want ErrTaken", err)
	}
	// Saving the same table again gives the same bytes (stable output).
	first, _ := os.ReadFile(path)
	if err := dst.Save(path); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if string(first) != string(second) {
		t.Errorf("re-saving the loaded table changed the file:\n%s\n---\n%s", first, second)
	}
}

func TestLoadDropsExpiredEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "announcements.json")
	if err := sampleTable(t).Save(path); err != nil {
		t.Fatal(err)
	}
	// The proxy restarts 2 hours later: gone.local and db.local have expired.
	restart := t0.Add(2 * time.Hour)
	tb := New(Options{})
	rep, err := tb.Load(path, restart)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Loaded != 2 || rep.Expired != 2 || tb.Len() != 2 {
		t.Errorf("report %+v, Len %d: want 2 loaded, 2 expired", rep, tb.Len())
	}
	if holder(tb, "db.local", restart) != "" {
		t.Error("an expired announcement came back after a restart")
	}
	// The dropped name is free for anyone.
	if err := announce(tb, "other", "db.local", time.Time{}, restart); err != nil {
		t.Errorf("announcing a name whose holder expired before the restart: %v", err)
	}
}

func TestLoadReplacesContents(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "announcements.json")
	if err := sampleTable(t).Save(path); err != nil {
		t.Fatal(err)
	}
	tb := New(Options{})
	mustAnnounce(t, tb, "stale", "stale.test", time.Time{}, t0)
	if _, err := tb.Load(path, t0); err != nil {
		t.Fatal(err)
	}
	if holder(tb, "stale.test", t0) != "" || tb.Len() != 4 {
		t.Errorf("Load kept old contents: Len %d", tb.Len())
	}
	// The operator counts are rebuilt too: stale holds nothing any more.
	small := New(Options{MaxPerOperator: 1})
	mustAnnounce(t, small, "private-proxy-2.ga", "x.test", time.Time{}, t0)
	if _, err := small.Load(path, t0); err != nil {
		t.Fatal(err)
	}
	if rep := small.List(t0); len(rep) != 2 {
		t.Errorf("with a cap of 1 per operator Load kept %d entries, want 2", len(rep))
	}
}

func TestLoadMissingFileIsEmpty(t *testing.T) {
	tb := New(Options{})
	mustAnnounce(t, tb, "a", "x.test", time.Time{}, t0)
	rep, err := tb.Load(filepath.Join(t.TempDir(), "none.json"), t0)
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if rep.Loaded != 0 || tb.Len() != 0 {
		t.Errorf("missing file: report %+v, Len %d, want an empty table", rep, tb.Len())
	}
}

func TestLoadCorruptFile(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"truncated.json":   `{"version":1,"announcements":[{"domain":"a.test","operator":"a","expires_at":null}`,
		"garbage.json":     "\x00\x01not json",
		"empty.json":       "",
		"array.json":       `[{"domain":"a.test"}]`,
		"version.json":     `{"version":2,"announcements":[]}`,
		"noversion.json":   `{"announcements":[]}`,
		"trailing.json":    `{"version":1,"announcements":[]} {}`,
		"badversion.json":  `{"version":"one","announcements":[]}`,
		"notarray.json":    `{"version":1,"announcements":{}}`,
		"brokenentry.json": `{"version":1,"announcements":[{"domain":"a.test",]}`,
	}
	for name, content := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		tb := New(Options{})
		mustAnnounce(t, tb, "a", "keep.test", time.Time{}, t0)
		_, err := tb.Load(path, t0)
		if err == nil {
			t.Errorf("%s: Load accepted a corrupt file", name)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
		if holder(tb, "keep.test", t0) != "a" || tb.Len() != 1 {
			t.Errorf("%s: a failed Load changed the table", name)
		}
	}
}

func TestLoadSkipsInvalidEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "announcements.json")
	future := t0.Add(time.Hour).Format(time.RFC3339)
	far := t0.Add(30 * 24 * time.Hour).Format(time.RFC3339)
	content := `{"version":1,"unknown":{"ignored":true},"announcements":[
{"domain":"ok.test","operator":"a","expires_at":null},
{"domain":"Mixed.Case.Test.","operator":"a"},
{"domain":"bad name.test","operator":"a","expires_at":null},
{"domain":"x.test","operator":"bad operator","expires_at":null},
{"domain":"y.test","operator":"","expires_at":null},
{"domain":"z.test","operator":"a","expires_at":"yesterday"},
{"domain":"far.test","operator":"a","expires_at":"` + far + `"},
{"domain":"ok.test","operator":"b","expires_at":null},
{"domain":"timed.test","operator":"a","expires_at":"` + future + `"},
{"domain":"zero.test","operator":"a","expires_at":"0001-01-01T00:00:00Z"},
42
]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tb := New(Options{})
	rep, err := tb.Load(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Loaded != 3 || rep.Invalid != 8 || len(rep.Errors) != 8 {
		t.Fatalf("report %+v: want 3 loaded, 8 invalid", rep)
	}
	for i, want := range []string{"bad name.test", "bad operator", `""`, "yesterday", "far.test", "ok.test", "zero.test", "42"} {
		if !strings.Contains(rep.Errors[i].Error(), want) {
			t.Errorf("error %d %q does not mention %q", i, rep.Errors[i], want)
		}
	}
	if !errors.Is(rep.Errors[5], ErrTaken) || !errors.Is(rep.Errors[4], ErrExpiry) || !errors.Is(rep.Errors[0], ErrInvalid) {
		t.Errorf("errors do not carry their kinds: %v", rep.Errors)
	}
	if holder(tb, "mixed.case.test", t0) != "a" || holder(tb, "ok.test", t0) != "a" || holder(tb, "timed.test", t0) != "a" {
		t.Errorf("valid entries were not loaded: %v", tb.List(t0))
	}
}

func TestLoadRespectsCaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "announcements.json")
	src := New(Options{})
	for i := 0; i < 5; i++ {
		mustAnnounce(t, src, "a", fmt.Sprintf("n%d.test", i), time.Time{}, t0)
	}
	if err := src.Save(path); err != nil {
		t.Fatal(err)
	}
	tb := New(Options{MaxEntries: 3})
	rep, err := tb.Load(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Loaded != 3 || rep.Invalid != 2 || !errors.Is(rep.Errors[0], ErrFull) {
		t.Errorf("report %+v: want 3 loaded, 2 refused as full", rep)
	}
}

func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "announcements.json")
	tb := sampleTable(t)
	if err := tb.Save(path); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	mustAnnounce(t, tb, "private-proxy-3.ga", "new.test", time.Time{}, t0)
	testHookAfterWrite = func() error { return errors.New("injected failure") }
	defer func() { testHookAfterWrite = nil }()
	err = tb.Save(path)
	if err == nil || !strings.Contains(err.Error(), "injected failure") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Save with a failing rename step: %v", err)
	}
	testHookAfterWrite = nil
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(before) {
		t.Errorf("the previous file changed after a failed Save: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("a failed Save left files behind: %v", names)
	}
	// And the old file still loads.
	if _, err := New(Options{}).Load(path, t0); err != nil {
		t.Errorf("previous file no longer loads: %v", err)
	}
	// A later Save succeeds and replaces it.
	if err := tb.Save(path); err != nil {
		t.Fatal(err)
	}
	fresh := New(Options{})
	if _, err := fresh.Load(path, t0); err != nil || holder(fresh, "new.test", t0) == "" {
		t.Errorf("Save after a failure did not write the new table: %v", err)
	}
}

func TestSaveIntoMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "announcements.json")
	err := sampleTable(t).Save(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Save into a missing directory: %v, want an error naming the path", err)
	}
}

func TestSaveEmptyTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "announcements.json")
	var tb Table
	if err := tb.Save(path); err != nil {
		t.Fatal(err)
	}
	other := New(Options{})
	mustAnnounce(t, other, "a", "x.test", time.Time{}, t0)
	if rep, err := other.Load(path, t0); err != nil || rep.Loaded != 0 || other.Len() != 0 {
		t.Errorf("loading an empty table: %+v, %v, Len %d", rep, err, other.Len())
	}
}

// FuzzLoad feeds arbitrary bytes to Load: it must return an error or a
// table that saves and loads back to the same announcements.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"version":1,"announcements":[{"domain":"a.test","operator":"a","expires_at":null}]}`))
	f.Add([]byte(`{"version":1,"announcements":[{"domain":"*.a.test","operator":"a","expires_at":"2025-03-01T13:00:00Z"},{"domain":"a.test","operator":"b"}]}`))
	f.Add([]byte(`{"version":1,"announcements":[1,"x",null,{}]}`))
	f.Add([]byte(`{"announcements":[],"version":1,"x":[{}]}`))
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "in.json")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		tb := New(Options{MaxEntries: 50, MaxPerOperator: 20})
		rep, err := tb.Load(path, t0)
		if err != nil {
			return
		}
		if rep.Loaded != tb.Len() || len(rep.Errors) > MaxLoadErrors || len(rep.Errors) > rep.Invalid {
			t.Fatalf("inconsistent report %+v for Len %d", rep, tb.Len())
		}
		out := filepath.Join(dir, "out.json")
		if err := tb.Save(out); err != nil {
			t.Fatal(err)
		}
		again := New(Options{MaxEntries: 50, MaxPerOperator: 20})
		rep2, err := again.Load(out, t0)
		if err != nil || rep2.Invalid != 0 || rep2.Expired != 0 {
			t.Fatalf("reloading a saved table: %+v, %v", rep2, err)
		}
		if a, b := fmt.Sprint(tb.List(t0)), fmt.Sprint(again.List(t0)); a != b {
			t.Fatalf("round trip changed the table:\n%s\n%s", a, b)
		}
	})
}

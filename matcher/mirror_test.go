package matcher

import (
	"errors"
	"testing"
	"time"
)

func TestCheckAppliesTheRulesThatNeedNoTable(t *testing.T) {
	now := time.Now()
	items := []Item{
		{Domain: "App.Example.com."},
		{Domain: "bad..name"},
		{Domain: "other.org"},
		{Domain: "late.example.com", ExpiresAt: now.Add(MaxExpiry + time.Hour)},
		{Domain: "gone.example.com", ExpiresAt: now.Add(-time.Hour)},
	}
	names, errs := Check("op.example", []string{"example.com"}, items, now)
	if names[0] != "app.example.com" || errs[0] != nil {
		t.Errorf("item 0: %q %v", names[0], errs[0])
	}
	for i, want := range []error{ErrInvalid, ErrNotAllowed, ErrExpiry} {
		if !errors.Is(errs[i+1], want) {
			t.Errorf("item %d: got %v, want %v", i+1, errs[i+1], want)
		}
	}
	if names[4] != "gone.example.com" || errs[4] != nil {
		t.Errorf("a withdrawal passes the checks: %q %v", names[4], errs[4])
	}
	_, errs = Check("bad operator", []string{"example.com"}, items[:1], now)
	if !errors.Is(errs[0], ErrInvalid) {
		t.Errorf("bad operator: %v", errs[0])
	}
}

func TestMirrorInstallsWhatTheStoreDecided(t *testing.T) {
	tb := New(Options{})
	now := time.Now()
	if errs := tb.Announce("a.example", []string{"example.com"}, []Item{{Domain: "x.example.com"}, {Domain: "y.example.com"}}, now); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	exp := now.Add(time.Hour).Truncate(time.Millisecond)
	skipped := tb.Mirror([]Announcement{
		{Domain: "x.example.com", Operator: "b.example", ExpiresAt: exp}, // the store gave it to b
		{Domain: "z.example.com", Operator: "b.example"},
		{Domain: "Not Valid", Operator: "b.example"},
	}, []string{"y.example.com", "never.example.com"})
	if skipped != 1 {
		t.Errorf("skipped %d, want 1", skipped)
	}
	if a, ok := tb.Lookup([]byte("x.example.com"), now); !ok || a.Operator != "b.example" || !a.ExpiresAt.Equal(exp) {
		t.Errorf("x: %+v %v", a, ok)
	}
	if _, ok := tb.Lookup([]byte("y.example.com"), now); ok {
		t.Error("y was deleted by the store but still matches")
	}
	if tb.Len() != 2 {
		t.Errorf("Len %d, want 2", tb.Len())
	}
	// The operator counts follow: b holds 2, a none, so a may announce up to its cap again.
	small := New(Options{MaxPerOperator: 1})
	small.Mirror([]Announcement{{Domain: "x.example.com", Operator: "a.example"}}, nil)
	small.Mirror(nil, []string{"x.example.com"})
	if errs := small.Announce("a.example", []string{"example.com"}, []Item{{Domain: "w.example.com"}}, now); errs[0] != nil {
		t.Errorf("a deleted mirror entry still counts against the cap: %v", errs[0])
	}
}

func TestReplaceHoldsExactlyTheStoreCopy(t *testing.T) {
	tb := New(Options{})
	now := time.Now()
	tb.Announce("a.example", []string{"example.com"}, []Item{{Domain: "old.example.com"}}, now)
	tb.Replace([]Announcement{{Domain: "new.example.com", Operator: "b.example"}})
	if _, ok := tb.Lookup([]byte("old.example.com"), now); ok {
		t.Error("old entry survived Replace")
	}
	if a, ok := tb.Lookup([]byte("new.example.com"), now); !ok || a.Operator != "b.example" {
		t.Errorf("new: %+v %v", a, ok)
	}
	tb.Replace(nil)
	if tb.Len() != 0 {
		t.Errorf("Replace(nil) left %d entries", tb.Len())
	}
}

func TestRefusalKeepsTheKind(t *testing.T) {
	if e := Refusal(ErrTaken, "x.example.com", "held"); !errors.Is(e, ErrTaken) || e.Code() != 409 {
		t.Errorf("%v code %d", e, e.Code())
	}
	if e := Refusal(errors.New("other"), "x", ""); !errors.Is(e, ErrInvalid) {
		t.Errorf("unknown kind: %v", e)
	}
}

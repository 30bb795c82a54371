package matcher

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	// 4 labels of 63 plus 3 dots = 255; trimming to 253 exactly:
	name253 := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	if len(name253) != 253 {
		t.Fatalf("test setup: len %d", len(name253))
	}
	tests := []struct {
		in, want string // want "" = invalid
	}{
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com.", "example.com"},
		{"EXAMPLE.com.", "example.com"},
		{"localhost", "localhost"},
		{"a_b-c.x-1.example", "a_b-c.x-1.example"},
		{"*.example.com", "*.example.com"},
		{"*.EXAMPLE.com.", "*.example.com"},
		{long63 + ".com", long63 + ".com"},
		{name253, name253},
		{name253 + ".", name253},

		{"", ""},
		{".", ""},
		{"example.com..", ""},
		{".example.com", ""},
		{"a..b", ""},
		{"a" + long63 + ".com", ""},
		{name253 + "x", ""},
		{"exa mple.com", ""},
		{"exämple.com", ""},
		{"example.com/", ""},
		{"ex\x00ample.com", ""},
		{"*", ""},
		{"*.", ""},
		{"*..", ""},
		{"**.example.com", ""},
		{"*a.example.com", ""},
		{"a.*.example.com", ""},
		{"example.*", ""},
		{"*.*.example.com", ""},
	}
	for _, tc := range tests {
		got, err := Normalize(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q) = %q, want an error", tc.in, got)
				continue
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize(%q) error %v does not wrap ErrInvalid", tc.in, err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Domain != tc.in || e.Code() != 400 {
				t.Errorf("Normalize(%q) error %#v: want *Error naming the input with code 400", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestAppendNormalized(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"WWW.Example.Com.", "www.example.com", true},
		{"a.b", "a.b", true},
		{"*.example.com", "", false}, // a host, never a pattern
		{"", "", false},
		{"bad host", "", false},
		{strings.Repeat("a", 64) + ".com", "", false},
	}
	for _, tc := range tests {
		dst := []byte("prefix:")
		out, ok := AppendNormalized(dst, []byte(tc.in))
		if ok != tc.ok {
			t.Errorf("AppendNormalized(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		want := "prefix:" + tc.want
		if string(out) != want {
			t.Errorf("AppendNormalized(%q) = %q, want %q", tc.in, out, want)
		}
	}
}

func TestAppendNormalizedDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, MaxNameLen+1)
	for _, in := range []string{"WWW.Example.COM.", "bad host", strings.Repeat("a", 300)} {
		name := []byte(in)
		allocs := testing.AllocsPerRun(100, func() {
			buf, _ = AppendNormalized(buf[:0], name)
		})
		if allocs != 0 {
			t.Errorf("AppendNormalized(%q) allocates %.1f times per call", in, allocs)
		}
	}
}

func TestCheckOperator(t *testing.T) {
	for _, op := range []string{"private-proxy-1.ga", "hd-1", "a"} {
		if err := checkOperator(op); err != nil {
			t.Errorf("checkOperator(%q) = %v", op, err)
		}
	}
	for _, op := range []string{"", "has space", "tab\t", "nl\n", "ü", strings.Repeat("o", MaxOperatorLen+1)} {
		if err := checkOperator(op); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkOperator(%q) = %v, want ErrInvalid", op, err)
		}
	}
}

// FuzzNormalize checks that no input panics and that the two normalisers
// agree: the canonical form is a fixed point and obeys the syntax.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"example.com", "Example.COM.", "*.a.b", "*", "a..b", "ä.com", strings.Repeat("a.", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Normalize(in)
		host, ok := AppendNormalized(nil, []byte(in))
		if err != nil {
			if ok {
				t.Fatalf("AppendNormalized accepts %q, Normalize does not: %v", in, err)
			}
			return
		}
		if len(got) == 0 || len(got) > MaxNameLen {
			t.Fatalf("Normalize(%q) = %q: bad length", in, got)
		}
		if again, err := Normalize(got); err != nil || again != got {
			t.Fatalf("Normalize(%q) = %q, but Normalize of that = %q, %v", in, got, again, err)
		}
		if strings.ToLower(got) != got || strings.HasSuffix(got, ".") {
			t.Fatalf("Normalize(%q) = %q is not canonical", in, got)
		}
		if isWildcard(got) {
			if ok {
				t.Fatalf("AppendNormalized accepts the pattern %q", in)
			}
			if strings.Contains(got[2:], "*") {
				t.Fatalf("Normalize(%q) = %q: '*' beyond the first label", in, got)
			}
			return
		}
		if !ok || string(host) != got || strings.Contains(got, "*") {
			t.Fatalf("Normalize(%q) = %q but AppendNormalized = %q, %v", in, got, host, ok)
		}
	})
}

// Match is the rule other packages use; it must pick exactly what Table.Lookup picks.
func TestMatchAgreesWithLookup(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tbl := New(Options{})
	items := []Item{
		{Domain: "exact.example"},
		{Domain: "*.example"},
		{Domain: "gone.example", ExpiresAt: now.Add(-time.Second)}, // withdrawn: the wildcard serves it
		{Domain: "*.deep.example"},
		{Domain: "host"},
	}
	if errs := tbl.Announce("op", []string{".example", "host"}, items, now.Add(-time.Minute)); errs[0] != nil {
		t.Fatalf("announce: %v", errs)
	}
	announced := map[string]bool{}
	for _, a := range tbl.List(now) {
		announced[a.Domain] = true
	}
	find := func(name string) (string, bool) { return name, announced[name] }
	for _, host := range []string{
		"exact.example", "other.example", "gone.example", "a.deep.example", "a.b.deep.example",
		"deep.example", "example", "host", "x.host", "*.example", "*.deep.example", "a.b.example", "",
	} {
		got, ok := Match(host, find)
		a, lok := tbl.Lookup([]byte(host), now)
		if ok != lok || (ok && got != a.Domain) {
			t.Errorf("%q: Match gives %q %v, Lookup %q %v", host, got, ok, a.Domain, lok)
		}
	}
}

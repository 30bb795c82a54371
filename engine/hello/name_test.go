package hello

import (
	"errors"
	"strings"
	"testing"
)

func TestServerNames(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	cases := []struct {
		sent string
		want string // "" means ErrBadName
	}{
		{"example.com", "example.com"},
		{"WWW.Example.COM", "www.example.com"},
		{"example.com.", "example.com"},
		{"Example.COM.", "example.com"},
		{"localhost", "localhost"},
		{"_acme-challenge.example.com", "_acme-challenge.example.com"},
		{"-edge-.example.com", "-edge-.example.com"},
		{"1password.com", "1password.com"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"a.b.c.d.e.f.g", "a.b.c.d.e.f.g"},
		{label63 + ".com", label63 + ".com"},
		{longName, longName},
		{longName + ".", longName},
		{strings.ToUpper(longName), longName},

		{longName + "a", ""},
		{"a" + label63 + ".com", ""},
		{"com." + "a" + label63, ""},
		{".", ""},
		{"..", ""},
		{"example..com", ""},
		{".example.com", ""},
		{"example.com..", ""},
		{"192.0.2.1", ""},
		{"192.0.2.1.", ""},
		{"127.1", ""},
		{"2130706433", ""},
		{"0x7f.1", ""},
		{"example.0x1F", ""},
		{"example.123", ""},
		{"[::1]", ""},
		{"::1", ""},
		{"fe80::1%eth0", ""},
		{"exa mple.com", ""},
		{"example.com:443", ""},
		{"exam\x00ple.com", ""},
		{"bücher.example", ""},
		{"a/b.example", ""},
		{"*.example.com", ""},
	}
	var p Parser
	for _, c := range cases {
		h, err := p.Parse(basicSpec(c.sent).bytes())
		if c.want == "" {
			if !errors.Is(err, ErrBadName) {
				t.Errorf("%q: %q, %v, want ErrBadName", c.sent, h.ServerName, err)
			}
			continue
		}
		if err != nil || string(h.ServerName) != c.want {
			t.Errorf("%q: %q, %v, want %q", c.sent, h.ServerName, err, c.want)
		}
	}
}

// TestUpperCaseNameLeavesInputIntact: the caller replays the hello bytes to
// the backend, so normalising the name must not write into them, whether the
// name sits in the input (one record) or in reassembled scratch (several).
func TestUpperCaseNameLeavesInputIntact(t *testing.T) {
	msg, _ := basicSpec("MiXeD.Example.ORG").message()
	for _, raw := range [][]byte{frameMsg(msg, len(msg)), frameMsg(msg, 7)} {
		orig := string(raw)
		var p Parser
		h, err := p.Parse(raw)
		if err != nil || string(h.ServerName) != "mixed.example.org" {
			t.Fatalf("%q, %v", h.ServerName, err)
		}
		if string(raw) != orig {
			t.Fatalf("Parse modified its input")
		}
		if h2, _ := p.Parse(raw); string(h2.ServerName) != "mixed.example.org" {
			t.Fatalf("second parse: %q", h2.ServerName)
		}
	}
}

// TestParsersShareInput runs two Parsers over one buffer at once, as two
// event loops never should but a read-only parser allows; the race detector
// reports any write to the input.
func TestParsersShareInput(t *testing.T) {
	raw := loadGolden(t, "go-upper.bin")
	done := make(chan error, 2)
	for range 2 {
		go func() {
			var p Parser
			for range 200 {
				if h, err := p.Parse(raw); err != nil || string(h.ServerName) != "www.example.com" {
					done <- errors.Join(err, errors.New(string(h.ServerName)))
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

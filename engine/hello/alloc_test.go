package hello

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestZeroAllocs: the event loop calls Parse on every read of every new
// connection, so neither success nor "need more" may allocate.
func TestZeroAllocs(t *testing.T) {
	var p Parser
	for file, raw := range goldenOK(t) {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := p.Parse(raw); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s (%d bytes, one record): %v allocs per Parse", file, len(raw), allocs)
		}
		half := raw[:len(raw)/2]
		if allocs := testing.AllocsPerRun(100, func() { p.Parse(half) }); allocs != 0 {
			t.Errorf("%s, incomplete: %v allocs per Parse", file, allocs)
		}
	}
	// Several records: the scratch buffer is allocated once, then reused.
	msg := unframe(t, loadGolden(t, "go126-mlkem.bin"))
	multi := frameMsg(msg, 100)
	p.Parse(multi)
	if allocs := testing.AllocsPerRun(100, func() { p.Parse(multi) }); allocs != 0 {
		t.Errorf("%d records: %v allocs per Parse after the first", (len(msg)+99)/100, allocs)
	}
	h, _ := p.Parse(loadGolden(t, "go-alpn-many.bin"))
	allocs := testing.AllocsPerRun(100, func() {
		if h.ALPN.Len() == 0 || !h.ALPN.Contains("http/1.1") {
			t.Fatal("ALPN lost")
		}
	})
	if allocs != 0 {
		t.Errorf("ALPN iteration: %v allocs", allocs)
	}
}

func TestReason(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{ErrIncomplete, "incomplete"},
		{ErrNotTLS, "not_tls"},
		{ErrSSLv2, "sslv2"},
		{ErrTooLarge, "too_large"},
		{ErrMalformed, "malformed"},
		{ErrNoSNI, "no_sni"},
		{ErrBadName, "bad_name"},
		{reject(ErrBadName, "detail %d", 1), "bad_name"},
		{fmt.Errorf("conn 7: %w", reject(ErrTooLarge, "x")), "too_large"},
		{io.EOF, "other"},
		{errors.New("hello: malformed ClientHello"), "other"},
	}
	for _, c := range cases {
		if got := Reason(c.err); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	// Every rejection Parse produces has a label.
	var p Parser
	for _, c := range rejections(t) {
		_, err := p.Parse(c.in)
		if got, want := Reason(err), Reason(c.want); got != want {
			t.Errorf("%s: Reason %q, want %q", c.name, got, want)
		}
	}
}

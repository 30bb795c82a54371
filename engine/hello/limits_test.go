package hello

import (
	"errors"
	"testing"
)

// paddedMsg returns a valid handshake message of exactly size bytes, grown
// with a padding extension (RFC 7685).
func paddedMsg(t testing.TB, size int) []byte {
	t.Helper()
	s := basicSpec("big.example.com")
	s.exts = append(s.exts, ext{21, nil})
	base, _ := s.message()
	if size < len(base) {
		t.Fatalf("size %d under the %d-byte minimum", size, len(base))
	}
	s.exts[len(s.exts)-1].data = make([]byte, size-len(base))
	msg, _ := s.message()
	return msg
}

func TestMaxHandshake(t *testing.T) {
	cases := []struct {
		limit, size int
		want        error
	}{
		{0, DefaultMaxHandshake, nil},
		{0, DefaultMaxHandshake + 1, ErrTooLarge},
		{512, 512, nil},
		{512, 513, ErrTooLarge},
		{1 << 30, HardMaxHandshake, nil},
		{1 << 30, HardMaxHandshake + 1, ErrTooLarge},
	}
	for _, c := range cases {
		p := Parser{MaxHandshake: c.limit}
		msg := paddedMsg(t, c.size)
		raw := frameMsg(msg, MaxRecordLen)
		h, err := p.Parse(raw)
		if !errors.Is(err, c.want) {
			t.Fatalf("limit %d, hello of %d: %v, want %v", c.limit, c.size, err, c.want)
		}
		if c.want == nil {
			if string(h.ServerName) != "big.example.com" || h.Length != len(raw) {
				t.Fatalf("limit %d, hello of %d: %q, Length %d", c.limit, c.size, h.ServerName, h.Length)
			}
			continue
		}
		// Refused from the record and handshake headers alone.
		if _, err := p.Parse(raw[:9]); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("limit %d, first 9 bytes of a %d-byte hello: %v", c.limit, c.size, err)
		}
	}
}

func TestMaxRecords(t *testing.T) {
	msg := paddedMsg(t, 400)
	p := Parser{MaxRecords: 5}
	for _, records := range []int{1, 5} {
		raw := frameMsg(msg, (len(msg)+records-1)/records)
		if h, err := p.Parse(raw); err != nil || h.Records != records {
			t.Fatalf("%d records: %d, %v", records, h.Records, err)
		}
	}
	// Six records: refused at the fifth record's header, which shows the
	// hello cannot end within the cap.
	raw := frameMsg(msg, (len(msg)+5)/6)
	fifth := 4 * (5 + (len(msg)+5)/6)
	if _, err := p.Parse(raw); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("6 records: %v", err)
	}
	if _, err := p.Parse(raw[:fifth+5]); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("through the fifth header: %v", err)
	}
	if _, err := p.Parse(raw[:fifth+4]); err != ErrIncomplete {
		t.Fatalf("before the fifth header is whole: %v", err)
	}
	// Handshake header still unknown when the last allowed record ends.
	p = Parser{MaxRecords: 2}
	if _, err := p.Parse(frameSizes(msg, []int{1, 1, len(msg) - 2})[:12]); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("handshake header over 3 records, cap 2: %v", err)
	}
}

// TestMaxInputIsTight: the longest hello the limits allow is exactly
// MaxInput bytes, so a caller capping its buffer there refuses nothing valid,
// and one byte less is still incomplete.
func TestMaxInputIsTight(t *testing.T) {
	for _, p := range []*Parser{{}, {MaxHandshake: 300, MaxRecords: 10}, {MaxHandshake: 2000, MaxRecords: 1}} {
		maxMsg, maxRec := p.limits()
		msg := paddedMsg(t, maxMsg)
		raw := frameMsg(msg, (len(msg)+maxRec-1)/maxRec)
		if len(raw) != p.MaxInput() {
			t.Fatalf("limits %d/%d: longest hello %d bytes, MaxInput %d", maxMsg, maxRec, len(raw), p.MaxInput())
		}
		if _, err := p.Parse(raw); err != nil {
			t.Fatalf("limits %d/%d: %v", maxMsg, maxRec, err)
		}
		if _, err := p.Parse(raw[:len(raw)-1]); err != ErrIncomplete {
			t.Fatalf("limits %d/%d, one byte short: %v", maxMsg, maxRec, err)
		}
	}
}

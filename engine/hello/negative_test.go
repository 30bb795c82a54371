package hello

import (
	"bytes"
	"errors"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

// rejection is one input Parse must refuse.
type rejection struct {
	name string
	in   []byte
	want error
	// at is the length of the shortest prefix that must already give want;
	// every shorter prefix must give ErrIncomplete. Zero means len(in).
	at int
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// withMsg returns spec s's handshake message after edit.
func withMsg(s spec, edit func(msg []byte) []byte) []byte {
	msg, _ := s.message()
	msg = edit(msg)
	putUint(msg[1:], 3, len(msg)-4)
	return frameMsg(msg, len(msg))
}

func rejections(t testing.TB) []rejection {
	ok := basicSpec("ok.example.com")
	okMsg, _ := ok.message()
	half := len(okMsg) / 2
	twoRecords := func(middle []byte) []byte {
		r := frameSizes(okMsg, []int{half, len(okMsg) - half})
		return concat(r[:5+half], middle, r[5+half:])
	}
	rnd := make([]byte, 300)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	rnd[0] = 0x42
	sslv2 := concat([]byte{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10},
		bytes.Repeat([]byte{0x00, 0x00, 0x2f}, 7), bytes.Repeat([]byte{0x11}, 16))
	large := func(size int) []byte { // record header + handshake header of a hello of size bytes
		return []byte{22, 3, 1, 0x40, 0, 1, byte((size - 4) >> 16), byte((size - 4) >> 8), byte(size - 4)}
	}

	return []rejection{
		{name: "HTTP request", in: []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), want: ErrNotTLS, at: 1},
		{name: "random bytes", in: rnd, want: ErrNotTLS, at: 1},
		{name: "SSH banner", in: []byte("SSH-2.0-OpenSSH_9.6\r\n"), want: ErrNotTLS, at: 1},
		{name: "SSLv2 hello", in: sslv2, want: ErrSSLv2, at: 3},
		{name: "high bit, not SSLv2", in: []byte{0x85, 0x00, 0x02, 0x03}, want: ErrNotTLS, at: 3},
		{name: "record version major 2", in: []byte{22, 2, 0, 0, 50}, want: ErrNotTLS, at: 2},
		{name: "alert record first", in: []byte{21, 3, 3, 0, 2, 2, 40}, want: ErrNotTLS, at: 1},
		{name: "application data first", in: []byte{23, 3, 3, 0, 1, 0}, want: ErrNotTLS, at: 1},
		{name: "zero-length record", in: []byte{22, 3, 1, 0, 0}, want: ErrMalformed, at: 5},
		{name: "zero-length second record", in: twoRecords([]byte{22, 3, 1, 0, 0}), want: ErrMalformed, at: 5 + half + 5},
		{name: "record over 16384", in: []byte{22, 3, 1, 0x40, 0x01}, want: ErrMalformed, at: 5},
		{name: "handshake type ServerHello", in: []byte{22, 3, 1, 0, 60, 2, 0, 0, 56}, want: ErrMalformed, at: 6},
		{name: "garbage after record header", in: concat([]byte{22, 3, 1, 1, 0, 0x07}, rnd[:255]), want: ErrMalformed, at: 6},
		{name: "hello over 16 KiB", in: large(16385), want: ErrTooLarge, at: 9},
		{name: "hello of 16 MiB", in: large(1<<24 + 3), want: ErrTooLarge, at: 9},
		{name: "hello over 16 KiB, header split", in: concat([]byte{22, 3, 1, 0, 2, 1, 0}, []byte{22, 3, 1, 0x40, 0, 0x40, 0x00}), want: ErrTooLarge, at: 14},
		{name: "body under the minimum", in: []byte{22, 3, 1, 0, 14, 1, 0, 0, 10, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0}, want: ErrMalformed, at: 9},
		{name: "legacy_version SSL 3.0", in: withMsg(spec{version: 0x0300, exts: ok.exts}, func(m []byte) []byte { return m }), want: ErrMalformed, at: 11},
		{name: "legacy_version 0x0304", in: withMsg(spec{version: 0x0304, exts: ok.exts}, func(m []byte) []byte { return m }), want: ErrMalformed, at: 11},
		{name: "alert between fragments", in: twoRecords([]byte{21, 3, 3, 0, 2, 2, 40}), want: ErrMalformed, at: 5 + half + 1},
		{name: "change_cipher_spec between fragments", in: twoRecords([]byte{20, 3, 3, 0, 1, 1}), want: ErrMalformed, at: 5 + half + 1},
		{name: "second record version major 2", in: func() []byte {
			r := twoRecords(nil)
			r[5+half+1] = 2
			return r
		}(), want: ErrMalformed, at: 5 + half + 2},
		{name: "record carries bytes past the hello", in: frameMsg(append(bytes.Clone(okMsg), 0, 0, 0), len(okMsg)+3), want: ErrMalformed, at: 9},
		{name: "second record carries bytes past the hello", in: frameSizes(append(bytes.Clone(okMsg), 1, 2), []int{half, len(okMsg) + 2 - half}), want: ErrMalformed, at: 5 + half + 5},
		{name: "session_id of 33 bytes", in: spec{sessionID: make([]byte, 33), exts: ok.exts}.bytes(), want: ErrMalformed},
		{name: "odd cipher_suites", in: spec{suites: []byte{0x13, 0x01, 0xc0}, exts: ok.exts}.bytes(), want: ErrMalformed},
		{name: "empty cipher_suites", in: spec{suites: []byte{}, exts: ok.exts}.bytes(), want: ErrMalformed},
		{name: "empty compression_methods", in: spec{compression: []byte{}, exts: ok.exts}.bytes(), want: ErrMalformed},
		{name: "duplicate ALPN", in: spec{exts: []ext{sniExt("a.example"), alpnExt("h2"), alpnExt("h2")}}.bytes(), want: ErrMalformed},
		{name: "duplicate server_name", in: spec{exts: []ext{sniExt("a.example"), sniExt("b.example")}}.bytes(), want: ErrMalformed},
		{name: "duplicate unknown extension", in: spec{exts: []ext{{0x1a1a, nil}, sniExt("a.example"), {0x1a1a, nil}}}.bytes(), want: ErrMalformed},
		{name: "two host_names", in: spec{exts: []ext{sniExt("a.example", "b.example")}}.bytes(), want: ErrMalformed},
		{name: "bytes after the extensions", in: withMsg(ok, func(m []byte) []byte { return append(m, 0) }), want: ErrMalformed},
		{name: "extension type cut short", in: withMsg(ok, func(m []byte) []byte {
			_, at := ok.message()
			putUint(m[at[fExts]:], 2, getUint(m[at[fExts]:], 2)+1)
			return append(m, 0)
		}), want: ErrMalformed},
		{name: "empty server_name extension", in: spec{exts: []ext{{extServerName, nil}}}.bytes(), want: ErrMalformed},
		{name: "empty server_name list", in: spec{exts: []ext{{extServerName, []byte{0, 0}}}}.bytes(), want: ErrMalformed},
		{name: "bytes after server_name list", in: spec{exts: []ext{{extServerName, append(sniExt("a.example").data, 0)}}}.bytes(), want: ErrMalformed},
		{name: "empty ALPN protocol", in: spec{exts: []ext{sniExt("a.example"), {extALPN, []byte{0, 4, 2, 'h', '2', 0}}}}.bytes(), want: ErrMalformed},
		{name: "empty ALPN list", in: spec{exts: []ext{sniExt("a.example"), {extALPN, []byte{0, 0}}}}.bytes(), want: ErrMalformed},
		{name: "bytes after ALPN list", in: spec{exts: []ext{sniExt("a.example"), {extALPN, append(alpnExt("h2").data, 7)}}}.bytes(), want: ErrMalformed},
		{name: "no extensions", in: spec{noExts: true}.bytes(), want: ErrNoSNI},
		{name: "empty extensions", in: spec{}.bytes(), want: ErrNoSNI},
		{name: "no server_name", in: spec{exts: []ext{alpnExt("h2"), {0x002b, []byte{2, 3, 4}}}}.bytes(), want: ErrNoSNI},
		{name: "only a non-host_name entry", in: spec{exts: []ext{{extServerName, []byte{0, 6, 1, 0, 3, 'a', 'b', 'c'}}}}.bytes(), want: ErrNoSNI},
		{name: "empty host_name", in: spec{exts: []ext{sniExt("")}}.bytes(), want: ErrNoSNI},
		{name: "IP literal", in: basicSpec("192.0.2.1").bytes(), want: ErrBadName},
		{name: "name of 254 bytes", in: basicSpec(strings.Repeat("a.", 126) + "bc").bytes(), want: ErrBadName},
	}
}

// TestRejections checks each bad input gets the right sentinel with a detail
// in its message, and that the verdict arrives at the earliest byte that
// makes it certain, not before and not later.
func TestRejections(t *testing.T) {
	for _, c := range rejections(t) {
		t.Run(c.name, func(t *testing.T) {
			var p Parser
			_, err := p.Parse(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse: %v, want %v", err, c.want)
			}
			if err.Error() == c.want.Error() || !strings.HasPrefix(err.Error(), c.want.Error()+": ") {
				t.Errorf("error %q carries no detail", err)
			}
			at := c.at
			if at == 0 {
				at = len(c.in)
			}
			if _, err := p.Parse(c.in[:at]); !errors.Is(err, c.want) {
				t.Errorf("first %d bytes: %v, want %v already", at, err, c.want)
			}
			for k := range at {
				if _, err := p.Parse(c.in[:k]); err != ErrIncomplete {
					t.Fatalf("first %d bytes: %v, want ErrIncomplete", k, err)
				}
			}
		})
	}
}

// TestLyingLengths falsifies every length prefix of a hello by one in each
// direction.
func TestLyingLengths(t *testing.T) {
	s := spec{sessionID: bytes.Repeat([]byte{7}, 16), exts: []ext{sniExt("lying.example.com"), alpnExt("h2"), {0x002b, []byte{2, 3, 4}}}}
	msg, at := s.message()
	var p Parser
	if h, err := p.Parse(frameMsg(msg, len(msg))); err != nil || string(h.ServerName) != "lying.example.com" {
		t.Fatalf("unaltered hello: %q, %v", h.ServerName, err)
	}
	for field, width := range fieldWidth {
		for _, delta := range []int{-1, +1} {
			m := bytes.Clone(msg)
			putUint(m[at[field]:], width, getUint(m[at[field]:], width)+delta)
			_, err := p.Parse(frameMsg(m, len(m)))
			want := ErrMalformed
			if field == fHandshake && delta > 0 {
				// Claims one byte more than its record: it may continue in
				// the next record, so only more input can tell.
				want = ErrIncomplete
			}
			if !errors.Is(err, want) {
				t.Errorf("%s length %+d: %v, want %v", field, delta, err, want)
			}
		}
	}

	raw := frameMsg(msg, len(msg))
	// A handshake length one too long is refused once a record other than a
	// handshake fragment follows.
	m := bytes.Clone(msg)
	putUint(m[1:], 3, len(m)-4+1)
	if _, err := p.Parse(concat(frameMsg(m, len(m)), []byte{20, 3, 3, 0, 1, 1})); !errors.Is(err, ErrMalformed) {
		t.Errorf("handshake length +1 then change_cipher_spec: %v", err)
	}
	// Record length one too long: the record outlives the hello.
	longer := concat(bytes.Clone(raw), []byte{0})
	putUint(longer[3:], 2, len(msg)+1)
	if _, err := p.Parse(longer); !errors.Is(err, ErrMalformed) {
		t.Errorf("record length +1: %v", err)
	}
	// Record length one too short: the hello's last byte (0x04) is read as
	// the next record's type.
	shorter := bytes.Clone(raw)
	putUint(shorter[3:], 2, len(msg)-1)
	if _, err := p.Parse(shorter); !errors.Is(err, ErrMalformed) {
		t.Errorf("record length -1: %v", err)
	}
}

// TestRejectionLeavesNoState checks a rejected hello does not disturb the
// next Parse (the duplicate-extension bitmap is cleared on every path).
func TestRejectionLeavesNoState(t *testing.T) {
	var p Parser
	good := spec{exts: []ext{alpnExt("h2"), sniExt("after.example")}}.bytes()
	for _, c := range rejections(t) {
		p.Parse(c.in)
		h, err := p.Parse(good)
		if err != nil || string(h.ServerName) != "after.example" {
			t.Fatalf("after %q: %q, %v", c.name, h.ServerName, err)
		}
	}
}

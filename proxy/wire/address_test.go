package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

func addrs(src, dst string) Addresses {
	return Addresses{Source: netip.MustParseAddrPort(src), Destination: netip.MustParseAddrPort(dst)}
}

// The bytes written are those of the PROXY protocol v2 specification, field by field.
func TestAppendAddressHeaderBytes(t *testing.T) {
	sig := "0d0a0d0a000d0a515549540a"
	for _, c := range []struct {
		name string
		a    Addresses
		want string
	}{
		{"IPv4", addrs("127.0.0.2:40000", "192.0.2.1:443"),
			sig + "21" + "11" + "000c" + "7f000002" + "c0000201" + "9c40" + "01bb"},
		{"IPv6", addrs("[2001:db8::1]:1", "[2001:db8::2]:65535"),
			sig + "21" + "21" + "0024" + "20010db8000000000000000000000001" + "20010db8000000000000000000000002" + "0001" + "ffff"},
		{"IPv4-mapped addresses are IPv4", addrs("[::ffff:10.0.0.1]:5", "[::ffff:10.0.0.2]:6"),
			sig + "21" + "11" + "000c" + "0a000001" + "0a000002" + "0005" + "0006"},
		{"IPv4 client, IPv6 listener: both IPv6", addrs("10.0.0.1:5", "[2001:db8::2]:6"),
			sig + "21" + "21" + "0024" + "00000000000000000000ffff0a000001" + "20010db8000000000000000000000002" + "0005" + "0006"},
		{"unknown: LOCAL", Addresses{}, sig + "20" + "00" + "0000"},
		{"half known: LOCAL", Addresses{Source: netip.MustParseAddrPort("10.0.0.1:5")}, sig + "20" + "00" + "0000"},
	} {
		got := hex.EncodeToString(AppendAddressHeader(nil, c.a))
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
	// It appends.
	if b := AppendAddressHeader([]byte("x"), Addresses{}); !bytes.HasPrefix(b, []byte("x\r\n")) || len(b) != 17 {
		t.Errorf("AppendAddressHeader does not append: %q", b)
	}
}

func TestParseAddressHeaderRoundTrip(t *testing.T) {
	for _, a := range []Addresses{
		addrs("127.0.0.2:40000", "127.0.0.1:4433"),
		addrs("[2001:db8::1]:1", "[2001:db8::2]:443"),
		addrs("[::1]:0", "[::1]:65535"),
		addrs("10.0.0.1:5", "[2001:db8::2]:6"),
		{},
	} {
		b := AppendAddressHeader(nil, a)
		tail := []byte("\x16\x03\x01 the hello")
		got, n, err := ParseAddressHeader(append(b, tail...))
		if err != nil || n != len(b) {
			t.Errorf("%v: n=%d err=%v, want n=%d", a, n, err, len(b))
			continue
		}
		want := Addresses{}
		if a.Known() {
			want = Addresses{netip.AddrPortFrom(a.Source.Addr().Unmap(), a.Source.Port()), netip.AddrPortFrom(a.Destination.Addr().Unmap(), a.Destination.Port())}
		}
		if got != want {
			t.Errorf("round trip of %v: got %v", a, got)
		}
		// Every strict prefix asks for more.
		for i := range len(b) {
			if _, _, err := ParseAddressHeader(b[:i]); !errors.Is(err, ErrShortAddressHeader) {
				t.Errorf("%v: %d of %d bytes: %v, want ErrShortAddressHeader", a, i, len(b), err)
			}
		}
	}
}

// Malformed or unexpected headers are refused, whatever follows; a stream that starts with
// anything but the signature's first byte has no header.
func TestParseAddressHeaderRefuses(t *testing.T) {
	good := AppendAddressHeader(nil, addrs("127.0.0.2:40000", "127.0.0.1:4433"))
	with := func(i int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[i:], v)
		return b
	}
	tlvs := func(n int) []byte {
		b := with(14, byte((12+n)>>8), byte(12+n))
		return append(b, make([]byte, n)...)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"a TLS record", []byte("\x16\x03\x01\x00\x05hello"), ErrNoAddressHeader},
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), ErrNoAddressHeader},
		{"PROXY v1", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNoAddressHeader},
		{"bad signature", with(7, 'X'), ErrBadAddressHeader},
		{"bad signature, last byte", with(11, 0), ErrBadAddressHeader},
		{"bad signature, short", []byte("\r\n\r\nX"), ErrBadAddressHeader},
		{"version 1", with(12, 0x11), ErrBadAddressHeader},
		{"version 3", with(12, 0x31), ErrBadAddressHeader},
		{"unknown command", with(12, 0x22), ErrBadAddressHeader},
		{"family UNSPEC", with(13, 0x00), ErrBadAddressHeader},
		{"family UNIX", with(13, 0x31), ErrBadAddressHeader},
		{"UDP over IPv4", with(13, 0x12), ErrBadAddressHeader},
		{"unknown family", with(13, 0x41), ErrBadAddressHeader},
		{"length short of IPv4 addresses", with(14, 0, 11), ErrBadAddressHeader},
		{"IPv6 family with IPv4 length", with(13, famTCP6), ErrBadAddressHeader},
		{"oversize length", with(14, 0xff, 0xff), ErrBadAddressHeader},
		{"just over the cap", with(14, 0, MaxAddressHeader-addressFixed+1), ErrBadAddressHeader},
		{"truncated addresses", good[:20], ErrShortAddressHeader},
		{"truncated fixed part", good[:15], ErrShortAddressHeader},
		{"TLVs announced, not there", with(14, 0, 40), ErrShortAddressHeader},
		{"nothing", nil, ErrShortAddressHeader},
	} {
		if _, n, err := ParseAddressHeader(c.b); !errors.Is(err, c.want) || n != 0 {
			t.Errorf("%s: n=%d err=%v, want %v", c.name, n, err, c.want)
		}
	}
	// TLVs after the addresses are skipped, up to the cap.
	for _, extra := range []int{1, MaxAddressHeader - addressFixed - lenTCP4} {
		b := tlvs(extra)
		a, n, err := ParseAddressHeader(append(b, 0x16))
		if err != nil || n != len(b) || a != addrs("127.0.0.2:40000", "127.0.0.1:4433") {
			t.Errorf("%d bytes of TLVs: %v %d %v", extra, a, n, err)
		}
	}
	// LOCAL: no addresses, whatever the family and address block say.
	local := append(with(12, cmdLocal, famTCP4), 0x16)
	if a, n, err := ParseAddressHeader(local); err != nil || n != len(good) || a.Known() {
		t.Errorf("LOCAL with an address block: %v %d %v", a, n, err)
	}
}

func BenchmarkParseAddressHeader(b *testing.B) {
	h := AppendAddressHeader(nil, addrs("127.0.0.2:40000", "127.0.0.1:4433"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseAddressHeader(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendAddressHeader(b *testing.B) {
	a := addrs("127.0.0.2:40000", "127.0.0.1:4433")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendAddressHeader(buf[:0], a)
	}
}

package wire

import (
	"errors"
	"testing"
)

// FuzzParseAddressHeader: whatever the bytes, ParseAddressHeader returns one of its errors or a
// length within the bytes and the cap, and a header it accepts says what AppendAddressHeader
// writes for the same addresses (so nothing it reads is lost or invented).
func FuzzParseAddressHeader(f *testing.F) {
	f.Add(AppendAddressHeader(nil, addrs("127.0.0.2:40000", "127.0.0.1:4433")))
	f.Add(AppendAddressHeader(nil, addrs("[2001:db8::1]:1", "[2001:db8::2]:443")))
	f.Add(AppendAddressHeader(nil, Addresses{}))
	f.Add(append(AppendAddressHeader(nil, addrs("10.0.0.1:1", "10.0.0.2:2")), "\x16\x03\x01"...))
	f.Add([]byte("\x16\x03\x01\x00\x05hello"))
	f.Add(addressSignature[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		a, n, err := ParseAddressHeader(b)
		if err != nil {
			if !errors.Is(err, ErrNoAddressHeader) && !errors.Is(err, ErrShortAddressHeader) && !errors.Is(err, ErrBadAddressHeader) {
				t.Fatalf("unexpected error %v", err)
			}
			if n != 0 || a != (Addresses{}) {
				t.Fatalf("an error with n=%d and %v", n, a)
			}
			return
		}
		if n < addressFixed || n > len(b) || n > MaxAddressHeader {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		again, m, err := ParseAddressHeader(AppendAddressHeader(nil, a))
		if err != nil || again != a || (a.Known() && m != addressFixed+lenTCP4 && m != addressFixed+lenTCP6) {
			t.Fatalf("%v rewritten reads back as %v (%d, %v)", a, again, m, err)
		}
	})
}

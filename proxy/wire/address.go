package wire

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// The address header carries a client's addresses in front of its bytes. It is a PROXY protocol
// version 2 header (HAProxy's proxy-protocol.txt, section 2.2), and it is written in two places:
//
//   - a public proxy writes it on a standby socket whose token was reserved with
//     ReserveParams.ClientAddress, before the replayed hello: the private proxy that asked reads
//     it and strips it (a private proxy that did not ask never gets one);
//   - a private proxy writes it to an internal server configured for it (proxy_protocol: v2),
//     before the client's first byte.
//
// What this package writes: command PROXY, TCP over IPv4 when both addresses are IPv4 (28
// bytes), else TCP over IPv6 with IPv4 addresses mapped (52 bytes), no TLVs; command LOCAL (16
// bytes) when the addresses are not known. What it reads: those, and TLVs after the addresses,
// which it skips, within MaxAddressHeader bytes in all.

// MaxAddressHeader caps the address header ParseAddressHeader reads: a longer one is refused.
const MaxAddressHeader = 256

// Errors of ParseAddressHeader.
var (
	// ErrNoAddressHeader: the bytes do not start an address header (a TLS record, say).
	ErrNoAddressHeader = errors.New("wire: no address header")
	// ErrShortAddressHeader: the bytes are the start of an address header; more are needed.
	ErrShortAddressHeader = errors.New("wire: address header incomplete")
	// ErrBadAddressHeader: the header is malformed or not one this package accepts.
	ErrBadAddressHeader = errors.New("wire: bad address header")
)

// Addresses are a client's address and port as a public proxy accepted it (Source) and the
// address and port of the public proxy's TLS listener it connected to (Destination).
type Addresses struct {
	Source      netip.AddrPort
	Destination netip.AddrPort
}

// Known reports whether both addresses are there.
func (a Addresses) Known() bool { return a.Source.IsValid() && a.Destination.IsValid() }

// addressSignature starts every PROXY protocol version 2 header.
var addressSignature = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// The header's fixed part and its codes.
const (
	addressFixed = 16   // signature, version and command, family and transport, length
	cmdLocal     = 0x20 // version 2, LOCAL
	cmdProxy     = 0x21 // version 2, PROXY
	famTCP4      = 0x11 // AF_INET, STREAM
	famTCP6      = 0x21 // AF_INET6, STREAM
	lenTCP4      = 12   // two IPv4 addresses, two ports
	lenTCP6      = 36   // two IPv6 addresses, two ports
)

// AppendAddressHeader appends the address header for a to b: TCP over IPv4 when both
// addresses are IPv4 (or IPv4-mapped IPv6), else TCP over IPv6; LOCAL when a is not Known.
func AppendAddressHeader(b []byte, a Addresses) []byte {
	b = append(b, addressSignature[:]...)
	if !a.Known() {
		return append(b, cmdLocal, 0, 0, 0)
	}
	src, dst := a.Source.Addr().Unmap(), a.Destination.Addr().Unmap()
	if src.Is4() && dst.Is4() {
		b = append(b, cmdProxy, famTCP4, 0, lenTCP4)
		s, d := src.As4(), dst.As4()
		b = append(append(b, s[:]...), d[:]...)
	} else {
		b = append(b, cmdProxy, famTCP6, 0, lenTCP6)
		s, d := src.As16(), dst.As16()
		b = append(append(b, s[:]...), d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, a.Source.Port())
	return binary.BigEndian.AppendUint16(b, a.Destination.Port())
}

// ParseAddressHeader reads the address header at the start of b and returns the addresses and
// the header's length; the bytes after it are the stream's. A LOCAL header gives no addresses
// (not Known). IPv4-mapped addresses come back as IPv4.
//
// ErrNoAddressHeader: b does not start with one (its first byte cannot start the signature).
// ErrShortAddressHeader: b is the start of one; read more and call again. ErrBadAddressHeader:
// a wrong signature, version or command, a family other than TCP over IPv4 or IPv6, a length
// too short for the family's addresses, or a header longer than MaxAddressHeader.
func ParseAddressHeader(b []byte) (Addresses, int, error) {
	if len(b) == 0 {
		return Addresses{}, 0, ErrShortAddressHeader
	}
	if b[0] != addressSignature[0] {
		return Addresses{}, 0, ErrNoAddressHeader
	}
	for i := 1; i < len(addressSignature) && i < len(b); i++ {
		if b[i] != addressSignature[i] {
			return Addresses{}, 0, ErrBadAddressHeader
		}
	}
	if len(b) < addressFixed {
		return Addresses{}, 0, ErrShortAddressHeader
	}
	cmd, fam := b[12], b[13]
	n := addressFixed + int(binary.BigEndian.Uint16(b[14:16]))
	if n > MaxAddressHeader {
		return Addresses{}, 0, ErrBadAddressHeader
	}
	var want int
	switch {
	case cmd == cmdLocal:
		// The receiver discards the address block, whatever the family says.
	case cmd != cmdProxy:
		return Addresses{}, 0, ErrBadAddressHeader
	case fam == famTCP4:
		want = lenTCP4
	case fam == famTCP6:
		want = lenTCP6
	default:
		return Addresses{}, 0, ErrBadAddressHeader
	}
	if n < addressFixed+want {
		return Addresses{}, 0, ErrBadAddressHeader
	}
	if len(b) < n {
		return Addresses{}, 0, ErrShortAddressHeader
	}
	body := b[addressFixed:n]
	var src, dst netip.Addr
	switch want {
	case 0:
		return Addresses{}, n, nil
	case lenTCP4:
		src, dst = netip.AddrFrom4([4]byte(body[0:4])), netip.AddrFrom4([4]byte(body[4:8]))
		body = body[8:]
	default:
		src, dst = netip.AddrFrom16([16]byte(body[0:16])).Unmap(), netip.AddrFrom16([16]byte(body[16:32])).Unmap()
		body = body[32:]
	}
	return Addresses{
		Source:      netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[0:2])),
		Destination: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2:4])),
	}, n, nil
}

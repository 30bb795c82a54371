package hello

import "iter"

// ProtocolList is the wire form of an ALPN protocol_name_list (RFC 7301),
// without its 2-byte length: a sequence of 1-byte-length-prefixed names.
// Parse hands out only lists it has validated, so the methods need no error
// path. Like ServerName it aliases the parsed input; it never allocates.
type ProtocolList []byte

// All yields each protocol name in the client's order of preference. The
// yielded slices alias the list. Safe for concurrent use.
func (l ProtocolList) All() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for rest := l; len(rest) > 0; {
			n := int(rest[0])
			if n == 0 || 1+n > len(rest) {
				return // not from Parse; stop rather than panic
			}
			if !yield(rest[1 : 1+n]) {
				return
			}
			rest = rest[1+n:]
		}
	}
}

// Len counts the protocol names. Safe for concurrent use.
func (l ProtocolList) Len() int {
	n := 0
	for range l.All() {
		n++
	}
	return n
}

// Contains reports whether the client offered proto. Safe for concurrent use.
func (l ProtocolList) Contains(proto string) bool {
	for p := range l.All() {
		if string(p) == proto {
			return true
		}
	}
	return false
}

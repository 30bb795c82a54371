package matcher

import (
	"fmt"
	"strings"
)

// Naming limits (RFC 1035 section 2.3.4, counted without the trailing dot).
const (
	MaxNameLen  = 253
	MaxLabelLen = 63
	// MaxOperatorLen caps operator names; the EPS directory uses host-like
	// names, so the DNS limit is generous.
	MaxOperatorLen = 253
)

// wildPrefix starts every wildcard pattern: "*" is only ever the whole
// first label.
const wildPrefix = "*."

// Normalize returns the canonical form of a host name or wildcard pattern:
// ASCII lower case, one trailing dot removed. It rejects anything that is
// not made of 1..63-byte labels of [a-z0-9_-] totalling at most 253 bytes,
// with "*" allowed only as the whole first label ("*.example.com").
// Hyphen position is not restricted: the table only compares names, and
// refusing names that resolve in practice would help nobody.
//
// The error is an *Error wrapping ErrInvalid. Safe for concurrent use.
func Normalize(name string) (string, error) {
	n, why, at := scan(name, true)
	if why != "" {
		switch {
		case why == "invalid character":
			why = fmt.Sprintf("invalid character %q at byte %d", name[at], at)
		case at >= 0:
			why = fmt.Sprintf("%s at byte %d", why, at)
		}
		return "", newError(ErrInvalid, name, why)
	}
	s := name[:n]
	for i := 0; i < n; i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s), nil
		}
	}
	return s, nil
}

// AppendNormalized appends the canonical form of the host name name (as
// Normalize, but wildcard patterns are refused) to dst. ok is false for an
// invalid name, in which case dst is returned unchanged. It never allocates
// when cap(dst)-len(dst) >= len(name), so the event loops can use it on
// every ClientHello with a reused buffer. Safe for concurrent use.
func AppendNormalized(dst, name []byte) (out []byte, ok bool) {
	n, why, _ := scan(name, false)
	if why != "" {
		return dst, false
	}
	for _, c := range name[:n] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// Match applies the table's rule for which announcement serves a host name: the name itself,
// else the one-label wildcard of its parent ("*." + parent). find reports whether a name or
// pattern is announced (and live, as the caller counts it). host must be in Normalize's form; a
// host that is itself a pattern ("*.x") matches nothing, so a client cannot reach whoever
// announced the pattern by asking for it literally. Table.Lookup follows the same rule
// without allocating; use Match wherever else names are matched, so that the two cannot
// disagree.
func Match[V any](host string, find func(name string) (V, bool)) (V, bool) {
	var none V
	if host == "" || host[0] == '*' {
		return none, false
	}
	if v, ok := find(host); ok {
		return v, true
	}
	parent, ok := wildcardParent(host)
	if !ok {
		return none, false
	}
	return find(wildPrefix + parent)
}

// wildcardParent returns what follows the first label of host: the parent that the only
// wildcard able to match host names. ok is false for a single label.
func wildcardParent[S string | []byte](host S) (parent S, ok bool) {
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if i == 0 || i == len(host)-1 {
				break
			}
			return host[i+1:], true
		}
	}
	return host[:0], false
}

// isWildcard reports whether the normalised name is a wildcard pattern.
func isWildcard(name string) bool { return strings.HasPrefix(name, wildPrefix) }

// scan validates name and returns the length of its canonical form (the
// trailing dot dropped). why is empty for a valid name; at is the offending
// byte offset, or -1. Upper case is accepted here because the callers lower
// it afterwards. The reasons are constants so that AppendNormalized stays
// allocation-free even for bad names.
func scan[S string | []byte](name S, wild bool) (n int, why string, at int) {
	n = len(name)
	if n > 0 && name[n-1] == '.' {
		n--
	}
	if n == 0 {
		return 0, "empty name", -1
	}
	if n > MaxNameLen {
		return 0, "longer than 253 bytes", -1
	}
	i := 0
	if wild && n >= 2 && name[0] == '*' && name[1] == '.' {
		i = 2
	}
	label := 0
	for ; i < n; i++ {
		switch c := name[i]; {
		case c == '.':
			if label == 0 {
				return 0, "empty label", i
			}
			label = 0
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', 'A' <= c && c <= 'Z':
			label++
			if label > MaxLabelLen {
				return 0, "label longer than 63 bytes", i
			}
		case c == '*':
			return 0, "'*' is only allowed as the whole first label", i
		default:
			return 0, "invalid character", i
		}
	}
	if label == 0 {
		return 0, "empty label", n
	}
	return n, "", -1
}

// checkOperator validates an operator name: 1..MaxOperatorLen printable
// ASCII bytes without spaces, enough for EPS directory names and safe to
// print in logs.
func checkOperator(op string) error {
	if op == "" || len(op) > MaxOperatorLen {
		return newError(ErrInvalid, op, fmt.Sprintf("operator name must be 1..%d bytes", MaxOperatorLen))
	}
	for i := 0; i < len(op); i++ {
		if c := op[i]; c <= ' ' || c > '~' {
			return newError(ErrInvalid, op, fmt.Sprintf("invalid character in operator name at byte %d", i))
		}
	}
	return nil
}

package hello

// normaliseName validates a host_name and returns it in lower case without
// its trailing dot. It aliases raw when raw is already lower case and copies
// into p.name otherwise, because raw may alias the caller's buffer, which is
// replayed to the backend and must stay byte-for-byte intact.
//
// The rule is deliberately looser than RFC 1123: labels of 1 to 63 bytes of
// letters, digits, '-' and '_', with hyphens allowed at label edges. The name
// is only a key into the announcement table, so an odd but harmless name
// just fails to match, while real clients do send underscores (internal
// hosts, SRV-style labels). What is refused is what cannot be a host name or
// could confuse the table: empty labels, other bytes (including the
// non-ASCII bytes of a U-label, which must arrive as an A-label), over-long
// names, and IP literals, which RFC 6066 section 3 excludes from SNI.
func (p *Parser) normaliseName(raw []byte) ([]byte, error) {
	name := raw
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	if len(name) == 0 {
		return nil, reject(ErrBadName, "name %q has no labels", raw)
	}
	if len(name) > MaxNameLen {
		return nil, reject(ErrBadName, "name of %d bytes, over %d", len(name), MaxNameLen)
	}
	upper := false
	label := 0 // start of the current label
	for i, c := range name {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case 'A' <= c && c <= 'Z':
			upper = true
		case c == '.':
			if i == label {
				return nil, reject(ErrBadName, "empty label at byte %d of %q", i, raw)
			}
			if i-label > 63 {
				return nil, reject(ErrBadName, "label of %d bytes, over 63", i-label)
			}
			label = i + 1
		default:
			return nil, reject(ErrBadName, "byte %#02x at %d of %q is not allowed in a host name", c, i, raw)
		}
	}
	last := name[label:]
	if len(last) == 0 {
		return nil, reject(ErrBadName, "empty last label in %q", raw)
	}
	if len(last) > 63 {
		return nil, reject(ErrBadName, "label of %d bytes, over 63", len(last))
	}
	if isNumericLabel(last) {
		return nil, reject(ErrBadName, "%q is an IP literal or has a numeric top-level label", raw)
	}
	if !upper {
		return name, nil
	}
	out := p.name[:len(name)]
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out, nil
}

// isNumericLabel reports a last label that resolvers and URL parsers read as
// a number: all decimal digits (dotted IPv4, "127.1", "2130706433") or a
// 0x-prefixed hex number (WHATWG URL treats "0x7f.1" as IPv4). No top-level
// domain is numeric (RFC 3696 section 2), so no real host name is lost.
func isNumericLabel(l []byte) bool {
	digits := l
	hex := false
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		digits, hex = l[2:], true
	}
	for _, c := range digits {
		switch {
		case '0' <= c && c <= '9':
		case hex && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F'):
		default:
			return false
		}
	}
	return true
}

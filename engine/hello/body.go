package hello

import "golang.org/x/crypto/cryptobyte"

// Extension code points this package reads.
const (
	extServerName = 0      // RFC 6066
	extALPN       = 16     // RFC 7301
	extECH        = 0xfe0d // draft-ietf-tls-esni, the code point browsers and Go send
)

// parseMessage parses a complete handshake message (header included) whose
// type and length locate has already checked.
func (p *Parser) parseMessage(msg []byte, h *ClientHello) error {
	s := cryptobyte.String(msg[handshakeHeaderLen:])
	// legacy_version was vetted by locate; the random is opaque.
	if !s.Skip(2 + 32) {
		return reject(ErrMalformed, "truncated legacy_version or random")
	}
	var sessionID, suites, compression, exts cryptobyte.String
	if err := readVec(&s, 1, &sessionID, "session_id"); err != nil {
		return err
	}
	if len(sessionID) > 32 {
		return reject(ErrMalformed, "session_id of %d bytes, over 32", len(sessionID))
	}
	if err := readVec(&s, 2, &suites, "cipher_suites"); err != nil {
		return err
	}
	if len(suites) == 0 || len(suites)%2 != 0 {
		return reject(ErrMalformed, "cipher_suites of %d bytes, want a positive even length", len(suites))
	}
	if err := readVec(&s, 1, &compression, "compression_methods"); err != nil {
		return err
	}
	if len(compression) == 0 {
		return reject(ErrMalformed, "empty compression_methods")
	}
	if s.Empty() {
		// Legal before TLS 1.3, but a hello without extensions has no SNI.
		return reject(ErrNoSNI, "ClientHello has no extensions")
	}
	if err := readVec(&s, 2, &exts, "extensions"); err != nil {
		return err
	}
	if !s.Empty() {
		return reject(ErrMalformed, "%d bytes after the extensions block", len(s))
	}

	sni, found, err := p.scanExtensions(exts, h)
	p.unmark(exts)
	if err != nil {
		return err
	}
	if !found {
		return reject(ErrNoSNI, "no server_name extension")
	}
	raw, err := hostName(sni)
	if err != nil {
		return err
	}
	h.ServerName, err = p.normaliseName(raw)
	return err
}

// scanExtensions checks the structure of every extension, refuses duplicates
// (crypto/tls does too, and a second server_name is an evasion attempt), and
// fills h from the ones this package reads. It returns the server_name body.
func (p *Parser) scanExtensions(exts cryptobyte.String, h *ClientHello) (sni cryptobyte.String, found bool, err error) {
	for !exts.Empty() {
		var typ uint16
		var body cryptobyte.String
		if !exts.ReadUint16(&typ) {
			return nil, false, reject(ErrMalformed, "truncated extension type")
		}
		if err := readVec(&exts, 2, &body, "extension"); err != nil {
			return nil, false, err
		}
		if p.mark(typ) {
			return nil, false, reject(ErrMalformed, "duplicate extension %#04x", typ)
		}
		switch typ {
		case extServerName:
			sni, found = body, true
		case extALPN:
			if h.ALPN, err = protocolList(body); err != nil {
				return nil, false, err
			}
		case extECH:
			h.ECH = true
		}
	}
	return sni, found, nil
}

// mark records an extension type and reports whether it was already seen.
func (p *Parser) mark(typ uint16) bool {
	w, bit := &p.seen[typ/64], uint64(1)<<(typ%64)
	dup := *w&bit != 0
	*w |= bit
	return dup
}

// unmark clears the bits scanExtensions set by walking the same block again;
// it stops where scanExtensions stopped, so every bit set is cleared.
func (p *Parser) unmark(exts cryptobyte.String) {
	for !exts.Empty() {
		var typ uint16
		var body cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&body) {
			return
		}
		p.seen[typ/64] &^= uint64(1) << (typ % 64)
	}
}

// hostName extracts the single host_name entry of a server_name extension
// (RFC 6066 section 3). Entries of other name types are skipped: the RFC
// requires them to start with a 16-bit length for exactly this reason.
func hostName(ext cryptobyte.String) ([]byte, error) {
	var list cryptobyte.String
	if err := readVec(&ext, 2, &list, "server_name list"); err != nil {
		return nil, err
	}
	if !ext.Empty() {
		return nil, reject(ErrMalformed, "%d bytes after the server_name list", len(ext))
	}
	if list.Empty() {
		return nil, reject(ErrMalformed, "empty server_name list")
	}
	var host []byte
	found := false
	for !list.Empty() {
		var typ uint8
		var name cryptobyte.String
		if !list.ReadUint8(&typ) {
			return nil, reject(ErrMalformed, "truncated server_name entry")
		}
		if err := readVec(&list, 2, &name, "server_name entry"); err != nil {
			return nil, err
		}
		if typ != 0 {
			continue
		}
		if found {
			return nil, reject(ErrMalformed, "more than one host_name in server_name")
		}
		host, found = name, true
	}
	if !found {
		return nil, reject(ErrNoSNI, "server_name has no host_name entry")
	}
	if len(host) == 0 {
		return nil, reject(ErrNoSNI, "empty host_name")
	}
	return host, nil
}

// protocolList validates an ALPN extension body (RFC 7301 section 3.1).
func protocolList(ext cryptobyte.String) (ProtocolList, error) {
	var list cryptobyte.String
	if err := readVec(&ext, 2, &list, "ALPN list"); err != nil {
		return nil, err
	}
	if !ext.Empty() {
		return nil, reject(ErrMalformed, "%d bytes after the ALPN list", len(ext))
	}
	if list.Empty() {
		return nil, reject(ErrMalformed, "empty ALPN list")
	}
	for rest := list; !rest.Empty(); {
		var proto cryptobyte.String
		if err := readVec(&rest, 1, &proto, "ALPN protocol"); err != nil {
			return nil, err
		}
		if proto.Empty() {
			return nil, reject(ErrMalformed, "empty ALPN protocol name")
		}
	}
	return ProtocolList(list), nil
}

// readVec reads a vector with a prefix-byte length and, on failure, says
// which length lied. cryptobyte consumes the prefix even when the read fails,
// hence the copy taken first.
func readVec(s *cryptobyte.String, prefix int, out *cryptobyte.String, what string) error {
	before := *s
	var ok bool
	if prefix == 1 {
		ok = s.ReadUint8LengthPrefixed(out)
	} else {
		ok = s.ReadUint16LengthPrefixed(out)
	}
	if ok {
		return nil
	}
	return lengthError(before, prefix, what)
}

// lengthError describes a length prefix that claims more bytes than remain.
func lengthError(s cryptobyte.String, prefix int, what string) error {
	if len(s) < prefix {
		return reject(ErrMalformed, "%s: truncated length", what)
	}
	n := 0
	for _, b := range s[:prefix] {
		n = n<<8 | int(b)
	}
	return reject(ErrMalformed, "%s length %d, but only %d bytes remain", what, n, len(s)-prefix)
}

package hello

// frame locates a complete handshake message inside the input.
type frame struct {
	msgLen  int // handshake message length, 4-byte header included
	records int // records that carried it
	end     int // input offset just past the last of those records
}

// locate walks the TLS records at the start of data until they carry a whole
// handshake message. Checks run in the order the bytes arrive, so a rejection
// decided on a prefix is the same rejection the whole input gets: feeding a
// longer slice never turns one rejection into another.
func locate(data []byte, maxMsg, maxRec int) (frame, error) {
	if err := checkLead(data); err != nil {
		return frame{}, err
	}
	var (
		pos     int     // offset of the current record header
		got     int     // handshake bytes carried by the records before pos
		msgLen  = -1    // known once the 4-byte handshake header is in
		head    [6]byte // first handshake bytes, which may straddle records
		headN   int
		records int
	)
	for {
		rec := data[pos:]
		if len(rec) < recordHeaderLen {
			if err := checkRecordStart(rec, records); err != nil {
				return frame{}, err
			}
			return frame{}, ErrIncomplete
		}
		// This loop runs once per record on every call, so the common case
		// stays inline and the error paths live in helpers.
		if records > 0 && (rec[0] != recordHandshake || rec[1] != 3) {
			return frame{}, checkRecordStart(rec, records)
		}
		n := int(rec[3])<<8 | int(rec[4])
		if n == 0 || n > MaxRecordLen {
			return frame{}, recordLengthError(n, records)
		}
		records++
		if records > maxRec { // defensive: the span checks refuse the last allowed record first
			return frame{}, reject(ErrTooLarge, "ClientHello continues past %d records", maxRec)
		}
		recEnd := got + n // handshake bytes once this record is complete
		if msgLen >= 0 && (recEnd > msgLen || recEnd < msgLen && records >= maxRec) {
			return frame{}, spanError(recEnd, msgLen, maxRec, records)
		}
		frag := rec[recordHeaderLen:min(len(rec), recordHeaderLen+n)]
		if headN < len(head) {
			headN += copy(head[headN:], frag)
			if err := checkHead(head[:headN], &msgLen, maxMsg); err != nil {
				return frame{}, err
			}
			// The span check above could not run if this record is the one
			// that completed the handshake header.
			if msgLen >= 0 && (recEnd > msgLen || recEnd < msgLen && records >= maxRec) {
				return frame{}, spanError(recEnd, msgLen, maxRec, records)
			}
			if headN >= len(head) {
				if err := checkVersion(head[4:6]); err != nil {
					return frame{}, err
				}
			}
		}
		if len(frag) < n {
			return frame{}, ErrIncomplete
		}
		got = recEnd
		pos += recordHeaderLen + n
		if got == msgLen {
			return frame{msgLen: msgLen, records: records, end: pos}, nil
		}
		if records == maxRec {
			// Only reachable while the handshake header is still unknown;
			// otherwise checkSpan has already refused this record.
			return frame{}, reject(ErrTooLarge, "ClientHello continues past %d records", maxRec)
		}
	}
}

// checkLead decides from the first one to three bytes whether the input can
// be a TLS handshake at all. An SSLv2-compatible hello is told apart from
// other junk by its third byte, so a high first bit waits for it.
func checkLead(data []byte) error {
	if len(data) == 0 {
		return ErrIncomplete
	}
	b := data[0]
	switch {
	case b&0x80 != 0:
		if len(data) < 3 {
			return ErrIncomplete
		}
		if data[2] == 1 {
			return reject(ErrSSLv2, "2-byte record header %#02x%02x with message type 1", data[0], data[1])
		}
		return reject(ErrNotTLS, "first byte %#02x is neither a handshake record nor SSLv2", b)
	case b != recordHandshake:
		if name := recordTypeName(b); name != "" {
			return reject(ErrNotTLS, "first record is %s (%d), not handshake", name, b)
		}
		return reject(ErrNotTLS, "first byte %#02x is not a handshake record", b)
	case len(data) >= 2 && data[1] != 3:
		return reject(ErrNotTLS, "record version major %d, want 3", data[1])
	}
	return nil
}

// checkRecordStart checks the type and major version of a record header
// that may be partial. The first record was already vetted by checkLead.
func checkRecordStart(rec []byte, index int) error {
	if index == 0 {
		return nil
	}
	if len(rec) >= 1 && rec[0] != recordHandshake {
		if name := recordTypeName(rec[0]); name != "" {
			return reject(ErrMalformed, "%s record (%d) at record %d, before the ClientHello is complete", name, rec[0], index+1)
		}
		return reject(ErrMalformed, "record %d has type %d, want handshake", index+1, rec[0])
	}
	if len(rec) >= 2 && rec[1] != 3 {
		return reject(ErrMalformed, "record %d has version major %d, want 3", index+1, rec[1])
	}
	return nil
}

func recordLengthError(n, index int) error {
	if n == 0 {
		return reject(ErrMalformed, "zero-length record %d", index+1)
	}
	return reject(ErrMalformed, "record %d is %d bytes, over the %d-byte limit", index+1, n, MaxRecordLen)
}

// checkHead vets the first handshake bytes seen so far and sets msgLen once
// the 4-byte header is complete.
func checkHead(head []byte, msgLen *int, maxMsg int) error {
	if len(head) == 0 {
		return nil
	}
	if head[0] != typeClientHello {
		return reject(ErrMalformed, "handshake type %d, want ClientHello (1)", head[0])
	}
	if len(head) < handshakeHeaderLen || *msgLen >= 0 {
		return nil
	}
	body := int(head[1])<<16 | int(head[2])<<8 | int(head[3])
	if handshakeHeaderLen+body > maxMsg {
		return reject(ErrTooLarge, "handshake message of %d bytes, cap %d", handshakeHeaderLen+body, maxMsg)
	}
	if body < minBodyLen {
		return reject(ErrMalformed, "ClientHello body of %d bytes, shorter than the minimum %d", body, minBodyLen)
	}
	*msgLen = handshakeHeaderLen + body
	return nil
}

// spanError explains a record that ends past the handshake message, or the
// last record allowed ending before it; both are counted in handshake bytes.
func spanError(recEnd, msgLen, maxRec, records int) error {
	if recEnd > msgLen {
		return reject(ErrMalformed, "record %d carries %d bytes past the end of the ClientHello", records, recEnd-msgLen)
	}
	return reject(ErrTooLarge, "ClientHello continues past %d records", maxRec)
}

// checkVersion accepts the legacy_version values of TLS 1.0 to 1.2; a TLS 1.3
// client sends 1.2 there and its real versions in supported_versions.
func checkVersion(v []byte) error {
	if v[0] != 3 || v[1] < 1 || v[1] > 3 {
		return reject(ErrMalformed, "legacy_version %#02x%02x, want 0x0301..0x0303", v[0], v[1])
	}
	return nil
}

func recordTypeName(t byte) string {
	switch t {
	case 20:
		return "change_cipher_spec"
	case 21:
		return "alert"
	case 23:
		return "application_data"
	}
	return ""
}

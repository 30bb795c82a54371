package hello

// Limits. The defaults follow BoringSSL and Envoy (16 KiB of ClientHello);
// the hard ceiling is Go's own refusal of handshake messages over 64 KiB.
const (
	// DefaultMaxHandshake caps the handshake message, 4-byte header included,
	// when Parser.MaxHandshake is zero or negative.
	DefaultMaxHandshake = 16384
	// HardMaxHandshake is the largest MaxHandshake honoured; larger values
	// are clamped to it.
	HardMaxHandshake = 4 + 65536
	// DefaultMaxRecords caps how many TLS records one hello may span when
	// Parser.MaxRecords is zero or negative. Real clients use one record, two
	// past 16 KiB; record-splitting evasion tools use a handful to a few
	// dozen. Parse re-walks the records on every call, so a client trickling
	// a hello in tiny records one byte per read costs calls x records; at 256
	// the worst case is 10-20 ms of CPU for a client that has to send about
	// 17,700 one-byte segments (BenchmarkParseTrickle).
	DefaultMaxRecords = 256
	// MaxRecordLen is the largest TLS plaintext record fragment (RFC 8446 5.1).
	MaxRecordLen = 16384
	// MaxNameLen is the longest server name accepted, trailing dot removed.
	MaxNameLen = 253

	recordHeaderLen    = 5
	handshakeHeaderLen = 4
	recordHandshake    = 0x16
	typeClientHello    = 1

	// minBodyLen is the shortest ClientHello body: legacy_version, random,
	// an empty session_id, one cipher suite and one compression method.
	minBodyLen = 2 + 32 + 1 + 2 + 2 + 1 + 1
)

// Parser extracts the server name from a ClientHello. The zero value is
// ready to use with the default limits. A Parser is not safe for concurrent
// use: keep one per event loop. It holds no per-connection state, only
// scratch space reused across calls, so one Parser serves every connection
// of its loop.
//
// Parse re-walks the record headers of the input on every call, so a client
// that trickles a hello split into many tiny records costs time quadratic in
// the number of records; MaxRecords bounds that (see DefaultMaxRecords).
type Parser struct {
	// MaxHandshake caps the handshake message including its 4-byte header.
	// Zero or negative means DefaultMaxHandshake; above HardMaxHandshake it
	// is clamped. Set it before the first Parse and do not change it while
	// a connection is mid-hello.
	MaxHandshake int
	// MaxRecords caps the TLS records one hello may span. Zero or negative
	// means DefaultMaxRecords.
	MaxRecords int

	// scratch reassembles a hello carried by more than one record. It grows
	// to at most the handshake cap and is reused.
	scratch []byte
	// name holds the lower-cased server name when the sender used capitals:
	// the input must not be modified because the caller replays it.
	name [MaxNameLen]byte
	// seen is a bitmap of extension types for duplicate detection, cleared
	// after every hello so the next call starts from zero without a sweep.
	seen [1 << 16 / 64]uint64
}

// ClientHello is what Parse extracts. Its slices alias either the input or
// the Parser's scratch space: they are valid until the next Parse call on the
// same Parser and while the input is unchanged. Copy them to keep them.
type ClientHello struct {
	// ServerName is the host_name from server_name, ASCII lower case, with
	// one trailing dot removed.
	ServerName []byte
	// ALPN is the application_layer_protocol_negotiation list, empty when
	// the extension is absent.
	ALPN ProtocolList
	// Length is how many input bytes the records that carried the hello
	// occupy: the hello ends on a record boundary, so the caller replays
	// exactly input[:Length] and anything after it belongs to the stream.
	Length int
	// Records is the number of TLS records the handshake message spanned.
	Records int
	// ECH reports an encrypted_client_hello extension. ServerName is then
	// the outer (public) name; the inner one is encrypted.
	ECH bool
}

// MaxInput is the longest input that can still be an incomplete hello under
// the Parser's limits: Parse decides every input of at least this many bytes.
// Not safe for concurrent use with changes to the limits.
func (p *Parser) MaxInput() int {
	maxMsg, maxRec := p.limits()
	return maxMsg + recordHeaderLen*min(maxRec, maxMsg)
}

func (p *Parser) limits() (maxMsg, maxRec int) {
	maxMsg = p.MaxHandshake
	if maxMsg <= 0 {
		maxMsg = DefaultMaxHandshake
	}
	maxMsg = min(maxMsg, HardMaxHandshake)
	maxRec = p.MaxRecords
	if maxRec <= 0 {
		maxRec = DefaultMaxRecords
	}
	return maxMsg, maxRec
}

// Parse examines data, every byte the client has sent so far, and returns
// the hello once the records carrying it are complete. ErrIncomplete asks
// for more bytes; any other error is a rejection wrapping one of the
// package's sentinels, decided from the earliest byte that makes the input
// invalid. Parse never modifies or retains data and does not allocate when
// the hello fits in one record (a multi-record hello reuses scratch space).
//
// Not safe for concurrent use; the result is valid until the next call.
func (p *Parser) Parse(data []byte) (ClientHello, error) {
	maxMsg, maxRec := p.limits()
	f, err := locate(data, maxMsg, maxRec)
	if err != nil {
		return ClientHello{}, err
	}
	h := ClientHello{Length: f.end, Records: f.records}
	var msg []byte
	if f.records == 1 {
		msg = data[recordHeaderLen : recordHeaderLen+f.msgLen]
	} else {
		msg = p.reassemble(data[:f.end], f.msgLen, maxMsg)
	}
	if err := p.parseMessage(msg, &h); err != nil {
		return ClientHello{}, err
	}
	return h, nil
}

// reassemble concatenates the fragments of the complete records in data.
func (p *Parser) reassemble(data []byte, msgLen, maxMsg int) []byte {
	if cap(p.scratch) < msgLen {
		p.scratch = make([]byte, 0, min(max(msgLen, 2*cap(p.scratch), 4096), maxMsg))
	}
	buf := p.scratch[:0]
	for len(data) >= recordHeaderLen {
		n := int(data[3])<<8 | int(data[4])
		buf = append(buf, data[recordHeaderLen:recordHeaderLen+n]...)
		data = data[recordHeaderLen+n:]
	}
	return buf
}

package backend

import (
	"errors"
	"fmt"
	"io"
)

// The command byte a client sends after the preamble.
const (
	CmdUpload   byte = 'U' // the client sends, the server sinks
	CmdDownload byte = 'D' // the server sends until the client goes away
	// Ack is the byte the server answers CmdUpload with. An uploading client waits for it, as a
	// TLS client waits for the server's handshake: a proxy may refuse a client that pushes
	// much more than its hello before the path to the server exists (early data).
	Ack byte = 'K'
)

// Limits of the server.
const (
	// MaxConns caps connections held at once; more are closed at accept. Bulk runs use at most
	// a few dozen streams.
	MaxConns = 512
	// MaxRecord caps the one TLS record read in raw mode: 5-byte header plus at most 2^14 bytes
	// of plaintext and the 256 bytes TLS allows for expansion.
	MaxRecord = 5 + 1<<14 + 256
	// ChunkSize is the read and write size of the data phase.
	ChunkSize = 256 << 10
)

// recordTypeHandshake is the TLS content type of a ClientHello record.
const recordTypeHandshake = 22

// ReadRecord reads one TLS record (header and body) from r into buf, which must hold MaxRecord
// bytes, and returns it. It refuses records that are not handshake records or are longer than
// TLS allows, so a stray client gets an error instead of a large read. Safe from any goroutine
// with its own buf.
func ReadRecord(r io.Reader, buf []byte) ([]byte, error) {
	if len(buf) < MaxRecord {
		return nil, fmt.Errorf("record buffer of %d bytes, need %d", len(buf), MaxRecord)
	}
	if _, err := io.ReadFull(r, buf[:5]); err != nil {
		return nil, fmt.Errorf("record header: %w", err)
	}
	if buf[0] != recordTypeHandshake {
		return nil, fmt.Errorf("record type %d, want %d (handshake)", buf[0], recordTypeHandshake)
	}
	n := int(buf[3])<<8 | int(buf[4])
	if n == 0 || 5+n > MaxRecord {
		return nil, fmt.Errorf("record length %d out of range", n)
	}
	if _, err := io.ReadFull(r, buf[5:5+n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("record body: %w", err)
	}
	return buf[:5+n], nil
}

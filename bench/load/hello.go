package load

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ClientHelloRecord returns the first TLS record crypto/tls sends as a client with cfg: a real
// ClientHello carrying cfg.ServerName. Raw-TCP bulk streams send it first so that a proxy can
// route them by SNI, then switch to plain bytes. Safe from any goroutine (cfg is only read).
func ClientHelloRecord(cfg *tls.Config) ([]byte, error) {
	if cfg == nil || cfg.ServerName == "" {
		return nil, errors.New("ClientHelloRecord: need a tls.Config with ServerName")
	}
	client, capture := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(client, cfg).Handshake() // fails once capture closes; only its first write matters
	}()
	defer func() { capture.Close(); client.Close(); <-done }()
	_ = capture.SetDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(capture, hdr); err != nil {
		return nil, fmt.Errorf("ClientHelloRecord: %w", err)
	}
	if hdr[0] != 22 {
		return nil, fmt.Errorf("ClientHelloRecord: first record has type %d, not handshake", hdr[0])
	}
	rec := make([]byte, 5+(int(hdr[3])<<8|int(hdr[4])))
	copy(rec, hdr)
	if _, err := io.ReadFull(capture, rec[5:]); err != nil {
		return nil, fmt.Errorf("ClientHelloRecord: %w", err)
	}
	return rec, nil
}

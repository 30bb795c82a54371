package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"epsproxy/bench/backend"
)

// MaxStreams caps the streams of one bulk run.
const MaxStreams = 64

// BulkConfig describes bulk streams to a backend.Server, directly or through a proxy.
type BulkConfig struct {
	Addr string
	// TLS makes the streams TLS (handshake verified against ServerName); nil makes them raw TCP,
	// which send Hello (one ClientHello record, see ClientHelloRecord) and then plain bytes.
	TLS     *tls.Config
	Hello   []byte
	Streams int
	Upload  bool          // client to server; false: server to client
	Timeout time.Duration // bounds setting up each stream (0: DefaultTimeout)
}

// Bulk is a set of running streams.
type Bulk struct {
	conns          []net.Conn
	received, sent atomic.Int64
	stopping       atomic.Bool
	wg             sync.WaitGroup
	mu             sync.Mutex
	err            error
}

// StartBulk opens cfg.Streams streams, sends the command byte on each and starts moving bytes.
// On error it closes what it opened. The caller must Stop the returned Bulk. Calls may overlap.
func StartBulk(ctx context.Context, cfg BulkConfig) (*Bulk, error) {
	if cfg.Streams < 1 || cfg.Streams > MaxStreams {
		return nil, fmt.Errorf("StartBulk: %d streams, want 1 to %d", cfg.Streams, MaxStreams)
	}
	if cfg.TLS == nil && len(cfg.Hello) == 0 {
		return nil, errors.New("StartBulk: raw streams need the Hello record")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	b := &Bulk{}
	d := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: -1}
	cmd := []byte{backend.CmdDownload}
	if cfg.Upload {
		cmd[0] = backend.CmdUpload
	}
	for range cfg.Streams {
		c, err := openStream(ctx, d, cfg, cmd)
		if err != nil {
			b.Stop()
			return nil, err
		}
		b.conns = append(b.conns, c)
	}
	for _, c := range b.conns {
		b.wg.Add(1)
		go b.pump(c, cfg.Upload)
	}
	return b, nil
}

func openStream(ctx context.Context, d *net.Dialer, cfg BulkConfig, cmd []byte) (net.Conn, error) {
	raw, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	_ = raw.SetDeadline(time.Now().Add(cfg.Timeout))
	var c net.Conn = raw
	if cfg.TLS != nil {
		tc := tls.Client(raw, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		c = tc
	} else if _, err := raw.Write(cfg.Hello); err != nil {
		raw.Close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	if _, err := c.Write(cmd); err != nil {
		raw.Close()
		return nil, fmt.Errorf("command: %w", err)
	}
	if cmd[0] == backend.CmdUpload {
		// Wait until the server is reached before pushing data, as a TLS client would.
		ack := make([]byte, 1)
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != backend.Ack {
			raw.Close()
			return nil, fmt.Errorf("no upload ack from the server: %q, %v", ack, err)
		}
	}
	_ = raw.SetDeadline(time.Time{})
	return c, nil
}

func (b *Bulk) pump(c net.Conn, upload bool) {
	defer b.wg.Done()
	buf := make([]byte, backend.ChunkSize)
	for {
		var n int
		var err error
		if upload {
			n, err = c.Write(buf)
			b.sent.Add(int64(n))
		} else {
			n, err = c.Read(buf)
			b.received.Add(int64(n))
		}
		if err != nil {
			if !b.stopping.Load() {
				b.mu.Lock()
				if b.err == nil {
					b.err = err
				}
				b.mu.Unlock()
			}
			return
		}
	}
}

// Received is the data bytes read by downloading streams so far. Safe from any goroutine.
func (b *Bulk) Received() int64 { return b.received.Load() }

// Sent is the data bytes written by uploading streams so far. Safe from any goroutine.
func (b *Bulk) Sent() int64 { return b.sent.Load() }

// Stop ends every stream, waits for them and returns the first error a stream hit before Stop
// (a stream cut short means the figures are suspect). Call it once, from one goroutine.
func (b *Bulk) Stop() error {
	b.stopping.Store(true)
	now := time.Now()
	for _, c := range b.conns {
		_ = c.SetDeadline(now)
	}
	b.wg.Wait()
	for _, c := range b.conns {
		if tc, ok := c.(*tls.Conn); ok {
			tc.NetConn().Close() // no close_notify: the deadline has passed anyway
		} else {
			c.Close()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

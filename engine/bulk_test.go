package engine_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// A long stream through the whole path, client -> engine -> relay -> private side -> backend and
// back, after a real ClientHello: every byte arrives, in order, and end of stream is passed on
// in each direction on its own.

// ack is what the backend answers to the hello, as a TLS server answers with its first flight.
var ack = []byte("hello received\n")

func TestBulkThroughTheWholePath(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	hello := captureHello(t, r.clientTC)
	type result struct {
		got  [sha256.Size]byte
		sent [sha256.Size]byte
		n    int64
		err  error
	}
	backend := make(chan result, 1)
	r.setBackend(func(c net.Conn) {
		defer c.Close()
		res := result{}
		defer func() { backend <- res }()
		_ = c.SetDeadline(time.Now().Add(bulkDeadline))
		got := make([]byte, len(hello))
		if _, err := io.ReadFull(c, got); err != nil {
			res.err = fmt.Errorf("backend reading the hello: %w", err)
			return
		}
		if !bytes.Equal(got, hello) {
			res.err = fmt.Errorf("backend got another hello: %s", firstDiff(got, hello))
			return
		}
		if _, err := c.Write(ack); err != nil {
			res.err = err
			return
		}
		// Read to the client's end of stream, then answer and close.
		h := sha256.New()
		if res.n, res.err = io.Copy(h, c); res.err != nil {
			return
		}
		res.got = sum(h)
		if res.sent, res.err = sendStream(c, 2); res.err != nil {
			return
		}
		res.err = c.(*net.TCPConn).CloseWrite()
	})

	c := dial(t, r.cfg.PublicAddr)
	_ = c.SetDeadline(time.Now().Add(bulkDeadline))
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(ack))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, ack) {
		t.Fatalf("client waiting for the backend's answer to its hello: %q, %v", got, err)
	}
	sent, err := sendStream(c, 1)
	if err != nil {
		t.Fatalf("client sending: %v", err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatalf("client reading the answer: %v after %d bytes", err, n)
	}
	var back result
	select {
	case back = <-backend:
	case <-time.After(bulkDeadline):
		t.Fatal("backend did not finish")
	}
	if back.err != nil {
		t.Fatal(back.err)
	}
	if back.n != bulkSize || back.got != sent {
		t.Errorf("client -> backend: %d bytes with SHA-256 %x, sent %d with %x", back.n, back.got, bulkSize, sent)
	}
	if gotSum := sum(h); n != bulkSize || gotSum != back.sent {
		t.Errorf("backend -> client: %d bytes with SHA-256 %x, sent %d with %x", n, gotSum, bulkSize, back.sent)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
}

// bulkDeadline bounds each end of the bulk test.
const bulkDeadline = 2 * time.Minute

// sendStream writes bulkSize bytes of a seeded pseudo-random stream to w and returns their hash.
func sendStream(w io.Writer, seed byte) ([sha256.Size]byte, error) {
	src := rand.NewChaCha8([32]byte{seed})
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for left := int64(bulkSize); left > 0; {
		b := buf[:min(int64(len(buf)), left)]
		_, _ = src.Read(b)
		h.Write(b)
		n, err := w.Write(b)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		if n != len(b) {
			return [sha256.Size]byte{}, errors.New("short write")
		}
		left -= int64(n)
	}
	return sum(h), nil
}

func sum(h hash.Hash) (s [sha256.Size]byte) {
	h.Sum(s[:0])
	return s
}

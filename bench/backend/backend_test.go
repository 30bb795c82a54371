package backend

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// record builds a handshake record with body n bytes long.
func record(n int) []byte {
	rec := append([]byte{22, 3, 1, byte(n >> 8), byte(n)}, bytes.Repeat([]byte{1}, n)...)
	return rec
}

func TestReadRecord(t *testing.T) {
	buf := make([]byte, MaxRecord)
	rec := record(300)
	got, err := ReadRecord(bytes.NewReader(append(rec, 'U')), buf)
	if err != nil || !bytes.Equal(got, rec) {
		t.Fatalf("ReadRecord = %d bytes, %v", len(got), err)
	}
	for name, in := range map[string][]byte{
		"not handshake":  {23, 3, 3, 0, 5, 1, 2, 3, 4, 5},
		"empty body":     {22, 3, 1, 0, 0},
		"too long":       {22, 3, 1, 0xff, 0xff},
		"short header":   {22, 3},
		"truncated body": record(300)[:100],
		"nothing":        nil,
	} {
		if _, err := ReadRecord(bytes.NewReader(in), buf); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ReadRecord(bytes.NewReader(rec), make([]byte, 100)); err == nil {
		t.Error("small buffer: no error")
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRawServerSinksAndSources(t *testing.T) {
	s, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	up := dial(t, s.Addr())
	if _, err := up.Write(append(record(200), CmdUpload)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 1)
	if _, err := io.ReadFull(up, ack); err != nil || ack[0] != Ack {
		t.Fatalf("upload ack: %q, %v", ack, err)
	}
	payload := bytes.Repeat([]byte("x"), 100_000)
	if _, err := up.Write(payload); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Received() < int64(len(payload)) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	// The record and the command byte are preamble, not data.
	if got := s.Received(); got != int64(len(payload)) {
		t.Fatalf("received %d, want %d", got, len(payload))
	}

	down := dial(t, s.Addr())
	if _, err := down.Write(append(record(50), CmdDownload)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(down, make([]byte, 3*ChunkSize)); err != nil {
		t.Fatalf("download: %v", err)
	}
	// The server counts a write when it returns, which can be after the client has read it.
	deadline = time.Now().Add(5 * time.Second)
	for s.Sent() < 3*ChunkSize && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if s.Sent() < 3*ChunkSize {
		t.Fatalf("Sent() = %d after the client read %d", s.Sent(), 3*ChunkSize)
	}
}

func TestRawServerDropsStrayClients(t *testing.T) {
	s, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, pre := range map[string][]byte{
		"http instead of TLS": []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"unknown command":     append(record(10), 'Z'),
	} {
		c := dial(t, s.Addr())
		if _, err := c.Write(pre); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(make([]byte, 10))
		if n != 0 || err == nil || isTimeout(err) {
			t.Errorf("%s: read %d bytes, %v; want the server to close", name, n, err)
		}
	}
}

// isTimeout tells a server that kept a stray connection open (the read deadline hit) from one
// that closed it.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestCloseEndsConnections(t *testing.T) {
	s, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr())
	if _, err := c.Write(append(record(10), CmdUpload)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 1)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != Ack {
		t.Fatalf("upload ack: %q, %v", ack, err)
	}
	if s.Conns() != 1 {
		t.Fatalf("Conns() = %d, want 1", s.Conns())
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("client read after Close: %v; want EOF or reset", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
}

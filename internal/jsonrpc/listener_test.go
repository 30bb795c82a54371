package jsonrpc

import (
	"io"
	"net"
	"testing"
	"time"
)

// One source cannot hold more than its share of connections; another source still gets in, and
// a closed connection frees its place.
func TestLimitListenerCapsEachSource(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(raw, 3, 100)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var clients, served []net.Conn
	for range 3 {
		clients = append(clients, dial("127.0.0.1"))
		served = append(served, <-accepted)
	}
	// The fourth from 127.0.0.1 is closed by the server without being handed on.
	extra := dial("127.0.0.1")
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the fourth connection from one source: read %v, want EOF", err)
	}
	extra.Close()
	// Another source is served.
	other := dial("127.0.0.2")
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a connection from 127.0.0.2 was not accepted")
	}
	other.Close()
	// A place freed by a close is taken again.
	served[0].Close()
	again := dial("127.0.0.1")
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed place was not given to the next connection")
	}
	again.Close()
	for _, c := range append(clients, served...) {
		c.Close()
	}
	if ln.Refused() != 1 {
		t.Errorf("refused %d, want 1", ln.Refused())
	}
}

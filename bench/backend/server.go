package backend

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// setupTimeout bounds the preamble (TLS handshake or record, then the command byte).
const setupTimeout = 10 * time.Second

// Server is a running bulk backend.
type Server struct {
	ln  net.Listener
	tls *tls.Config

	received, sent atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen starts a backend on addr: TLS with tlsCfg, or raw TCP after one TLS record when
// tlsCfg is nil. Each server is independent; tlsCfg must not change afterwards.
func Listen(addr string, tlsCfg *tls.Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, tls: tlsCfg, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address. Safe from any goroutine.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Received is the number of data bytes received from uploading clients so far (preambles not
// counted). Safe from any goroutine.
func (s *Server) Received() int64 { return s.received.Load() }

// Sent is the number of data bytes written to downloading clients so far. Safe from any
// goroutine.
func (s *Server) Sent() int64 { return s.sent.Load() }

// Conns is the number of connections held now. Safe from any goroutine.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting, closes every connection and waits for their goroutines. Safe from any
// goroutine; later calls return nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		s.mu.Lock()
		if s.closed || len(s.conns) >= MaxConns {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Server) serve(raw net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, raw)
		s.mu.Unlock()
		raw.Close()
	}()
	c, err := s.preamble(raw)
	if err != nil {
		return
	}
	buf := make([]byte, ChunkSize)
	var cmd [1]byte
	if _, err := c.Read(cmd[:]); err != nil {
		return
	}
	_ = raw.SetDeadline(time.Time{})
	switch cmd[0] {
	case CmdUpload:
		if _, err := c.Write([]byte{Ack}); err != nil {
			return
		}
		for {
			n, err := c.Read(buf)
			s.received.Add(int64(n))
			if err != nil {
				return
			}
		}
	case CmdDownload:
		for i := range buf {
			buf[i] = byte(i)
		}
		for {
			n, err := c.Write(buf)
			s.sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
}

// preamble does the TLS handshake, or reads the one ClientHello record in raw mode, under
// setupTimeout.
func (s *Server) preamble(raw net.Conn) (net.Conn, error) {
	_ = raw.SetDeadline(time.Now().Add(setupTimeout))
	if s.tls != nil {
		c := tls.Server(raw, s.tls)
		if err := c.Handshake(); err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
		return c, nil
	}
	buf := make([]byte, MaxRecord)
	if _, err := ReadRecord(raw, buf); err != nil {
		return nil, err
	}
	return raw, nil
}

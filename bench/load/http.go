package load

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits of the response reader.
const (
	// MaxHeader caps a response's status line and headers.
	MaxHeader = 8 << 10
	// MaxBody caps a response body; the demo server answers with a few dozen bytes.
	MaxBody = 64 << 10
	// BufSize is the scratch buffer ReadResponse needs.
	BufSize = MaxHeader
)

// Request returns a fixed HTTP/1.1 GET for host and path. With close it asks the server to close
// the connection after answering (one request per connection); without, the connection stays
// open for keep-alive.
func Request(host, path string, close bool) []byte {
	conn := ""
	if close {
		conn = "Connection: close\r\n"
	}
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: epsproxy-bench\r\nAccept: */*\r\n" + conn + "\r\n")
}

// ReadResponse reads one HTTP/1.x response from r, using buf (at least BufSize bytes) as
// scratch, and returns its status code. The body is read and discarded: by Content-Length, or to
// EOF when there is none. Chunked bodies and oversized headers or bodies are errors.
func ReadResponse(r io.Reader, buf []byte) (int, error) {
	if len(buf) < BufSize {
		return 0, fmt.Errorf("response buffer of %d bytes, need %d", len(buf), BufSize)
	}
	n, end := 0, -1
	for end < 0 {
		if n == MaxHeader {
			return 0, fmt.Errorf("response headers longer than %d bytes", MaxHeader)
		}
		m, err := r.Read(buf[n:MaxHeader])
		n += m
		if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("response headers: %w", err)
		}
	}
	status, length, err := parseHead(buf[:end])
	if err != nil {
		return 0, err
	}
	have := n - end
	if length < 0 { // no Content-Length: the body ends at EOF
		for {
			m, err := r.Read(buf)
			have += m
			if have > MaxBody {
				return status, fmt.Errorf("response body longer than %d bytes", MaxBody)
			}
			if errors.Is(err, io.EOF) {
				return status, nil
			}
			if err != nil {
				return status, fmt.Errorf("response body: %w", err)
			}
		}
	}
	if have > length {
		return status, fmt.Errorf("%d bytes after a %d-byte body", have-length, length)
	}
	for have < length {
		m, err := r.Read(buf[:min(len(buf), length-have)])
		have += m
		if err != nil && have < length {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return status, fmt.Errorf("response body: %w", err)
		}
	}
	return status, nil
}

// parseHead returns the status code and Content-Length (-1 when absent) of a response head
// ending in CRLF CRLF.
func parseHead(head []byte) (status, length int, err error) {
	lines := bytes.Split(head[:len(head)-4], []byte("\r\n"))
	sl := lines[0]
	if len(sl) < 12 || !bytes.HasPrefix(sl, []byte("HTTP/1.")) || sl[8] != ' ' {
		return 0, 0, fmt.Errorf("bad status line %q", trunc(sl))
	}
	status, err = strconv.Atoi(string(sl[9:12]))
	if err != nil || status < 100 || status > 999 {
		return 0, 0, fmt.Errorf("bad status code in %q", trunc(sl))
	}
	length = -1
	for _, l := range lines[1:] {
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return 0, 0, fmt.Errorf("bad header line %q", trunc(l))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.Atoi(string(value))
			if err != nil || v < 0 || v > MaxBody {
				return 0, 0, fmt.Errorf("bad or too large Content-Length %q", trunc(value))
			}
			length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")) && !bytes.EqualFold(value, []byte("identity")):
			return 0, 0, fmt.Errorf("transfer-encoding %q not supported", trunc(value))
		}
	}
	return status, length, nil
}

func trunc(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

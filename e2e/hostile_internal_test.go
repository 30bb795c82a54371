package e2e

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"epsproxy/internal/chain"
	"epsproxy/internal/testnet"
)

// tokenTimeout is the public proxy's token_timeout in this test (5 s in the dev settings).
const tokenTimeout = 3 * time.Second

// tokenTap sits on the dial-back path between the private proxy and the public proxy's internal
// port (the public proxy tells the private proxy to dial it, and the private proxy's pin allows
// it), forwards everything and records each 32-byte token it sees: an eavesdropper's view.
type tokenTap struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	tokens [][]byte
	wg     sync.WaitGroup
}

func newTap(t *testing.T, addr, target string) *tokenTap {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &tokenTap{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *tokenTap) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer in.Close()
			tok := make([]byte, 32)
			_ = in.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(in, tok); err != nil {
				return
			}
			_ = in.SetReadDeadline(time.Time{})
			p.mu.Lock()
			p.tokens = append(p.tokens, tok)
			p.mu.Unlock()
			out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				return
			}
			defer out.Close()
			if _, err := out.Write(tok); err != nil {
				return
			}
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
			go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
			<-done
			// One side ended: give the other a moment to finish, then cut both.
			_ = in.SetDeadline(time.Now().Add(2 * time.Second))
			_ = out.SetDeadline(time.Now().Add(2 * time.Second))
			<-done
		}()
	}
}

func (p *tokenTap) seen() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.tokens...)
}

// Bad connections on the public proxy's internal port: each is closed without a byte and counted
// as a bad token; short and silent ones at token_timeout, wrong and replayed tokens at once. A
// token seen on the wire cannot be used a second time. (Garbage after a valid token needs a live
// token nobody else uses; the engine's own tests cover it.)
func TestBadInputOnTheInternalPort(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	withAdmin(t, c, chain.Public)
	tapAddr := testnet.FreeAddr(t)
	overlayRole(t, c, "public-proxy-1", fmt.Sprintf("public: {token_timeout: %s, internal_endpoint: %q}\n", tokenTimeout, tapAddr))
	overlayRole(t, c, "private-proxy-1", fmt.Sprintf("private: {endpoints: {public-proxy-1.ga: %q}}\n", tapAddr))
	tp := newTap(t, tapAddr, c.Ports.PublicInternal)
	startAll(t, c) // its GET goes through the tap
	seen := tp.seen()
	if len(seen) == 0 {
		t.Fatal("the tap saw no token: the dial-back did not go through it")
	}
	replayed := seen[len(seen)-1]
	before := adminStats(t, c, chain.Public)

	wrong := make([]byte, 32)
	_, _ = rand.Read(wrong)
	cases := []struct {
		name    string
		data    []byte
		timeout bool // closed at token_timeout rather than at once
	}{
		{"short token (10 bytes)", wrong[:10], true},
		{"nothing", nil, true},
		{"wrong token", wrong, false},
		{"token seen on the wire, replayed", replayed, false},
		{"33 bytes", append(append([]byte(nil), wrong...), 0), false},
	}
	var wg sync.WaitGroup
	for _, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialed := time.Now()
			conn, err := net.DialTimeout("tcp", c.Ports.PublicInternal, 5*time.Second)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				return
			}
			defer conn.Close()
			if tc.data != nil {
				if _, err := conn.Write(tc.data); err != nil {
					t.Errorf("%s: %v", tc.name, err)
					return
				}
			}
			n, elapsed, err := closedBy(conn, dialed, tokenTimeout+5*time.Second)
			t.Logf("%s: closed after %v, %d bytes received", tc.name, elapsed.Round(time.Millisecond), n)
			switch {
			case err != nil:
				t.Errorf("%s: %v", tc.name, err)
			case n != 0:
				t.Errorf("%s: %d bytes came back (a client's hello?); want a silent close", tc.name, n)
			case !tc.timeout && elapsed >= tokenTimeout:
				t.Errorf("%s: closed after %v, not at once (token_timeout is %v)", tc.name, elapsed, tokenTimeout)
			case tc.timeout && elapsed < tokenTimeout-200*time.Millisecond:
				t.Errorf("%s: closed after %v, before token_timeout %v", tc.name, elapsed, tokenTimeout)
			}
		}()
	}
	wg.Wait()
	after := adminStats(t, c, chain.Public)
	if d := after.Counters["BadTokens"] - before.Counters["BadTokens"]; d != int64(len(cases)) {
		t.Errorf("BadTokens rose by %d, want %d", d, len(cases))
	}
	if d := after.Counters["Paired"] - before.Counters["Paired"]; d != 0 {
		t.Errorf("%d clients were paired with a bad internal connection", d)
	}
	// The chain still serves, through the tap.
	waitGet(t, c, chain.Domain)
}

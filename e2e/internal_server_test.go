package e2e

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// The internal server refuses connections (it is stopped): a new client is closed promptly
// rather than at the public proxy's accept_timeout.
func TestInternalServerRefuses(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	startAll(t, c)
	if err := c.Stop(chain.Internal, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		elapsed, err := handshakeFails(c, 15*time.Second)
		if err == nil {
			t.Fatal("a TLS handshake succeeded with the internal server stopped")
		}
		t.Logf("internal server stopped: client %d closed after %v (%v)", i, elapsed.Round(time.Millisecond), err)
		if elapsed > 5*time.Second {
			t.Errorf("client %d waited %v with the internal server refusing; want a prompt close, well inside accept_timeout (10 s)", i, elapsed)
		}
	}
	if err := c.Start(chain.Internal); err != nil {
		t.Fatal(err)
	}
	waitGet(t, c, chain.Domain)
}

// stallServer accepts connections and never reads or writes: an internal server that hangs.
type stallServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newStallServer(t *testing.T, addr string) *stallServer {
	t.Helper()
	var ln net.Listener
	var err error
	// The stopped internal server's port may linger for a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &stallServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stallServer) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *stallServer) close() {
	s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// The internal server stalls (accepts, never answers). What is right: each client's TLS
// handshake times out at the client, which then gives up and closes; the private proxy spends
// no goroutine on a stalled connection, and the half-closed pairs the stalled server keeps open
// are reclaimed by the private proxy's idle_timeout (shortened to 3 s here; 1 h by default), so
// neither proxy piles up sockets.
func TestInternalServerStalls(t *testing.T) {
	t.Parallel()
	const clients = 20
	const idle = 3 * time.Second
	c := newChain(t)
	withAdmin(t, c, chain.Public, chain.Private)
	overlayRole(t, c, "private-proxy-1", "private: {idle_timeout: 3s}\n")
	startAll(t, c)
	cl := c.HTTPClient(c.Ports.PublicTLS, false)
	for range 3 {
		if code, _, err := get(cl, chain.Domain); err != nil || code != 200 {
			t.Fatalf("warm-up GET: %d %v", code, err)
		}
	}
	// The pairs of the warm-up end within idle_timeout at the latest; the baseline comes after.
	basePriv := settledStats(t, c, chain.Private)
	basePub := settledStats(t, c, chain.Public)

	if err := c.Stop(chain.Internal, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	stall := newStallServer(t, c.Ports.Internal)

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := handshakeFails(c, 2*time.Second)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	timeouts := 0
	for err := range errs {
		var ne net.Error
		switch {
		case err == nil:
			t.Error("a TLS handshake succeeded against a server that never answers")
		case errors.As(err, &ne) && ne.Timeout():
			timeouts++
		default:
			t.Errorf("a client's handshake ended with %v; want its own timeout (the stalled server never answered, nobody should close it)", err)
		}
	}
	t.Logf("%d of %d clients timed out at their own 2 s handshake deadline; the stalled server accepted %d connections", timeouts, clients, stall.accepted())
	if got := stall.accepted(); got != clients {
		t.Errorf("the stalled server accepted %d connections, want %d (one per client)", got, clients)
	}

	// The clients have given up and closed. No goroutine per stalled connection...
	st := adminStats(t, c, chain.Private)
	t.Logf("private proxy right after the clients gave up: goroutines %d (baseline %d), fds %d (baseline %d), pairs %d",
		st.Process.Goroutines, basePriv.Process.Goroutines, st.Process.FDs, basePriv.Process.FDs, st.Counters["Pairs"])
	if extra := st.Process.Goroutines - basePriv.Process.Goroutines; extra >= clients/2 {
		t.Errorf("the private proxy holds %d more goroutines than before %d stalled connections", extra, clients)
	}
	// ...and every socket back within the idle timeout.
	waitBaseline(t, c, chain.Private, basePriv, idle+10*time.Second, "Pairs", "DialsQueued")
	waitBaseline(t, c, chain.Public, basePub, idle+10*time.Second, "Pairs", "Pending", "HelloConns")
}

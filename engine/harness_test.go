package engine_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/engine/relay"
	"epsproxy/internal/testnet"
	"epsproxy/matcher"
	"epsproxy/proxy/wire"
)

const (
	domain   = "test.example.internal"
	operator = "private.test"

	// patience bounds every wait for something that should happen at once: generous, so a slow
	// shared machine does not fail a test, yet far below the 30 s phase deadlines the tests that
	// check "closed at once" configure, so a refusal is told apart from a timeout.
	patience = 10 * time.Second
	// longPhase is the phase deadline of rigs whose tests must not meet a deadline.
	longPhase = 30 * time.Second
)

// rig is a public proxy engine with a real TLS backend behind a private side that dials back the
// way the private proxy does: connect to the internal port, send the token, relay to the backend.
type rig struct {
	eng      *engine.Engine
	cfg      engine.Config
	table    *matcher.Table
	relay    *relay.Relay
	backend  net.Listener
	clientTC *tls.Config
	serverTC *tls.Config
	roots    *x509.CertPool

	// accepts counts connections the backend accepted.
	accepts   atomic.Int64
	noticeCh  chan engine.Notice // every notice, for tests that play the private side
	received  chan []byte        // raw bytes the backend got before its TLS layer, one per connection
	closeOnce sync.Once

	mu        sync.Mutex     // guards the fields below, which tests set before connecting
	hold      bool           // notices are recorded, nobody dials back
	notifyErr error          // returned by the notifier
	serve     func(net.Conn) // backend handler; nil: TLS echo
}

func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newRig(t testing.TB, tune func(*engine.Config)) *rig {
	t.Helper()
	return newRigLog(t, tune, logger())
}

// newRigLog is newRig with the engine logging to log.
func newRigLog(t testing.TB, tune func(*engine.Config), log *slog.Logger) *rig {
	t.Helper()
	p := testnet.NewPKI(t)
	p.Add(t, "backend", "backend", "*.example.internal")
	id := p.Identity(t, "backend")
	r := &rig{received: make(chan []byte, 64), noticeCh: make(chan engine.Notice, 4096), roots: id.Roots}
	r.clientTC = &tls.Config{RootCAs: id.Roots, ServerName: domain}
	r.serverTC = &tls.Config{Certificates: []tls.Certificate{id.Cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.backend = ln
	go r.serveBackend()

	r.table = matcher.New(matcher.Options{})
	if errs := r.table.Announce(operator, []string{".example.internal"}, []matcher.Item{{Domain: domain}}, time.Now()); errs[0] != nil {
		t.Fatal(errs[0])
	}
	r.relay, err = relay.New(relay.Config{})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	r.cfg = engine.Config{PublicAddr: testnet.FreeAddr(t), InternalAddr: testnet.FreeAddr(t), Tick: 20 * time.Millisecond}
	if tune != nil {
		tune(&r.cfg)
	}
	r.eng, err = engine.New(r.cfg, r.table, r.notify, r.relay, log)
	if err != nil {
		r.relay.Close()
		ln.Close()
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- r.eng.Run() }()
	select {
	case <-r.eng.Ready():
	case err := <-errc:
		r.relay.Close()
		ln.Close()
		t.Fatal(err)
	case <-time.After(patience):
		t.Fatal("engine not ready in time")
	}
	t.Cleanup(r.close)
	return r
}

// close stops the engine and closes the relay and the backend; later calls do nothing.
func (r *rig) close() {
	r.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.eng.Stop(ctx)
		select {
		case <-r.eng.Done():
		case <-time.After(patience):
		}
		r.relay.Close()
		r.backend.Close()
	})
}

// holdNotices makes the notifier only record: the test plays the private side itself.
func (r *rig) holdNotices() {
	r.mu.Lock()
	r.hold = true
	r.mu.Unlock()
}

// setBackend replaces the backend's connection handler.
func (r *rig) setBackend(f func(net.Conn)) {
	r.mu.Lock()
	r.serve = f
	r.mu.Unlock()
}

func (r *rig) serveBackend() {
	for {
		c, err := r.backend.Accept()
		if err != nil {
			return
		}
		r.accepts.Add(1)
		r.mu.Lock()
		f := r.serve
		r.mu.Unlock()
		if f == nil {
			f = func(c net.Conn) { r.echoTLS(c, nil) }
		}
		go f(c)
	}
}

// echoTLS is the default backend: TLS, then echo. It records the raw bytes it read up to the end
// of the handshake (the replayed hello and the client's second flight) for byte-exactness checks.
// fix, if set, may rewrite those bytes after they are recorded and before TLS sees them.
func (r *rig) echoTLS(c net.Conn, fix func(off int, p []byte)) {
	defer c.Close()
	rec := &recorder{Conn: c, fix: fix}
	tc := tls.Server(rec, r.serverTC)
	_ = tc.SetDeadline(time.Now().Add(longPhase))
	if err := tc.Handshake(); err != nil {
		return
	}
	select {
	case r.received <- rec.first():
	default:
	}
	_ = tc.SetDeadline(time.Time{})
	_, _ = io.Copy(tc, tc)
}

// notify is the engine's Notifier: it records the notice and plays the private side.
func (r *rig) notify(n engine.Notice) error {
	r.mu.Lock()
	hold, err := r.hold, r.notifyErr
	r.mu.Unlock()
	select {
	case r.noticeCh <- n:
	default:
	}
	if err != nil {
		return err
	}
	if !hold {
		go func() { _ = r.dialBack(n.Token) }()
	}
	return nil
}

// nextNotice waits for the engine's next notice.
func (r *rig) nextNotice(t testing.TB) engine.Notice {
	t.Helper()
	select {
	case n := <-r.noticeCh:
		return n
	case <-time.After(patience):
		t.Fatal("no notice from the engine")
	}
	return engine.Notice{}
}

// dialBack is the private side: present the token on the internal port, then relay it to the
// backend.
func (r *rig) dialBack(tok wire.Token) error {
	pub, err := net.DialTimeout("tcp", r.cfg.InternalAddr, patience)
	if err != nil {
		return err
	}
	if _, err := pub.Write(tok[:]); err != nil {
		pub.Close()
		return err
	}
	return r.relayToBackend(pub)
}

// relayToBackend connects an internal connection that already sent its token to the backend.
func (r *rig) relayToBackend(pub net.Conn) error {
	back, err := net.DialTimeout("tcp", r.backend.Addr().String(), patience)
	if err != nil {
		pub.Close()
		return err
	}
	return r.relay.AddConns(pub.(*net.TCPConn), back.(*net.TCPConn), nil, nil, "private")
}

// recorder keeps the first 64 KiB read through it.
type recorder struct {
	net.Conn
	fix func(off int, p []byte)
	mu  sync.Mutex
	buf []byte
	off int
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	if len(r.buf) < 64<<10 {
		r.buf = append(r.buf, p[:n]...)
	}
	if r.fix != nil {
		r.fix(r.off, p[:n])
	}
	r.off += n
	r.mu.Unlock()
	return n, err
}

func (r *recorder) first() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf...)
}

// dial opens a plain TCP connection to addr.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closeResult is how a connection the engine should close ended.
type closeResult struct {
	got     int           // bytes read before the close
	closed  bool          // EOF or reset seen
	err     error         // the read error that ended it
	elapsed time.Duration // from start to the close
}

func (c closeResult) String() string {
	return fmt.Sprintf("closed=%v after %v with %d bytes read (%v)", c.closed, c.elapsed.Round(time.Millisecond), c.got, c.err)
}

// awaitClose reads from c until the peer closes it (EOF or reset) or bound passes.
func awaitClose(c net.Conn, start time.Time, bound time.Duration) closeResult {
	_ = c.SetReadDeadline(time.Now().Add(bound))
	var res closeResult
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		res.got += n
		if err != nil {
			res.elapsed = time.Since(start)
			res.err = err
			var ne net.Error
			res.closed = !(errors.As(err, &ne) && ne.Timeout())
			return res
		}
	}
}

// refusedAtOnce asserts the engine closed c without sending a byte, before patience ran out.
func refusedAtOnce(t testing.TB, c net.Conn, what string) {
	t.Helper()
	if res := awaitClose(c, time.Now(), patience); !res.closed || res.got != 0 {
		t.Errorf("%s: want a close without a byte, got %v", what, res)
	}
}

// stillOpen asserts the engine has not closed c: a short read finds no EOF.
func stillOpen(t testing.TB, c net.Conn, what string) {
	t.Helper()
	if res := awaitClose(c, time.Now(), 50*time.Millisecond); res.closed || res.got != 0 {
		t.Errorf("%s: want an open, silent connection, got %v", what, res)
	}
	_ = c.SetReadDeadline(time.Time{})
}

// wantIdle waits until the engine holds no client in the hello or waiting phase.
func wantIdle(t testing.TB, r *rig) {
	t.Helper()
	waitFor(t, "no client in the hello or waiting phase", func() bool {
		return r.eng.HelloConns() == 0 && r.eng.Pending() == 0
	})
}

// waitFor polls cond until it holds or patience runs out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stats(e *engine.Engine) map[string]*atomic.Int64 {
	s := e.Stats()
	return map[string]*atomic.Int64{
		"Accepted": &s.Accepted, "Refused": &s.Refused, "NoRoute": &s.NoRoute, "Matched": &s.Matched,
		"Paired": &s.Paired, "Expired": &s.Expired, "NotifyFailed": &s.NotifyFailed,
		"BadTokens": &s.BadTokens, "HelloTimeouts": &s.HelloTimeouts, "RateLimited": &s.RateLimited,
		"Overloaded": &s.Overloaded, "SourceBusy": &s.SourceBusy,
	}
}

// wantStats checks the named counters; every counter not named must be zero. The counters are
// bumped on the event loops, so a wait covers the moment between a client seeing its close and
// the loop finishing its callback.
func wantStats(t testing.TB, e *engine.Engine, want map[string]int64) {
	t.Helper()
	all := stats(e)
	for name := range want {
		if all[name] == nil {
			t.Fatalf("no counter %q", name)
		}
	}
	match := func() bool {
		for name, v := range all {
			if v.Load() != want[name] {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(2 * time.Second)
	for !match() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for name, v := range all {
		if got := v.Load(); got != want[name] {
			t.Errorf("Stats.%s = %d, want %d", name, got, want[name])
		}
	}
}

package engine_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/proxy/wire"
)

// A client's addresses reach the private side two ways: in front of the replayed hello on a
// standby socket whose token asked for them (the address header), and in the Notice of a client
// that takes the signaled path. A socket whose token did not ask gets the client's bytes alone.

// helloFrom connects a TLS client from the local address ip and returns what it puts on the
// wire and its address as the engine sees it; its handshake goes on in the background until the
// test ends.
func helloFrom(t testing.TB, r *rig, ip string) (*tap, netip.AddrPort) {
	t.Helper()
	w := &tap{Conn: dialFrom(t, ip, r.cfg.PublicAddr)}
	c := tls.Client(w, r.clientTC)
	_ = c.SetDeadline(time.Now().Add(2 * patience))
	go func() { _ = c.Handshake() }()
	return w, w.Conn.LocalAddr().(*net.TCPAddr).AddrPort()
}

// readFirst reads from the private side's end until it holds n bytes after an address header
// (header true) or n bytes (header false); it returns the addresses and the bytes after them.
func readFirst(t testing.TB, c net.Conn, header bool, n func() int) (wire.Addresses, []byte) {
	t.Helper()
	// The tap records the client's bytes after its write returns, so they may reach the private
	// side first: read in short steps and look at n again after each.
	deadline := time.Now().Add(patience)
	defer c.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 4096)
	for {
		a, hl, err := wire.ParseAddressHeader(got)
		switch {
		case !header && n() > 0 && len(got) >= n():
			if !errors.Is(err, wire.ErrNoAddressHeader) {
				t.Fatalf("the private side's first bytes read as an address header: %v %v", a, err)
			}
			return wire.Addresses{}, got
		case header && err == nil && len(got)-hl >= n() && n() > 0:
			return a, got[hl:]
		case header && err != nil && !errors.Is(err, wire.ErrShortAddressHeader):
			t.Fatalf("no address header in front of the hello: %v (%q)", err, got)
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		k, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Fatalf("private side: read after %d bytes (want %d after the header): %v", len(got), n(), err)
		}
		got = append(got, buf[:k]...)
	}
}

func TestStandbyClientAddressHeader(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	toks, _, err := r.eng.Reserve(operator, 1, wire.SocketMode{ClientAddress: true})
	if err != nil {
		t.Fatal(err)
	}
	priv := park(t, r, toks[0])
	w, from := helloFrom(t, r, "127.0.0.2")
	a, rest := readFirst(t, priv, true, func() int { return len(w.onWire()) })
	want := wire.Addresses{Source: from, Destination: netip.MustParseAddrPort(r.cfg.PublicAddr)}
	if a != want || from.Addr() != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("address header says %v, want %v", a, want)
	}
	if sent := w.onWire(); !bytes.Equal(rest, sent) {
		t.Errorf("after the header the private side did not get the client's bytes: %s", firstDiff(rest, sent))
	}
	noNotice(t, r)
	wantStandbyStats(t, r, 1, 1, 0)

	// A token reserved without client_address: the hello alone, as before.
	priv = park(t, r, reserveOne(t, r, operator))
	w, _ = helloFrom(t, r, "127.0.0.3")
	_, rest = readFirst(t, priv, false, func() int { return len(w.onWire()) })
	if sent := w.onWire(); !bytes.Equal(rest, sent) {
		t.Errorf("a socket that did not ask got other bytes than the client's: %s", firstDiff(rest, sent))
	}
}

// Tokens another instance minted carry the request too (AcceptTokens).
func TestAcceptedTokensCarryClientAddress(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	toks, until, err := r.eng.Mint(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.eng.AcceptTokens(operator, []wire.TokenHash{engine.HashToken(toks[0])}, until, wire.SocketMode{ClientAddress: true}); err != nil {
		t.Fatal(err)
	}
	priv := park(t, r, toks[0])
	w, from := helloFrom(t, r, "127.0.0.4")
	if a, _ := readFirst(t, priv, true, func() int { return len(w.onWire()) }); a.Source != from {
		t.Errorf("address header says %v, want the source %v", a, from)
	}
}

// The signaled path: the Notice carries the client's addresses. On a listener bound to a
// wildcard address, the destination is the address the client reached, not the wildcard.
func TestNoticeCarriesClientAddresses(t *testing.T) {
	t.Parallel()
	for _, bind := range []string{"127.0.0.1", "0.0.0.0"} {
		t.Run(bind, func(t *testing.T) {
			t.Parallel()
			r := standbyRig(t, func(c *engine.Config) {
				_, port, _ := net.SplitHostPort(c.PublicAddr)
				c.PublicAddr = net.JoinHostPort(bind, port)
			})
			_, port, _ := net.SplitHostPort(r.cfg.PublicAddr)
			r.cfg.PublicAddr = net.JoinHostPort("127.0.0.1", port)
			_, from := helloFrom(t, r, "127.0.0.2")
			n := r.nextNotice(t)
			want := wire.Addresses{Source: from, Destination: netip.MustParseAddrPort(r.cfg.PublicAddr)}
			if n.Addresses != want {
				t.Errorf("notice carries %v, want %v", n.Addresses, want)
			}
		})
	}
}

package engine_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"epsproxy/engine/relay"
	"epsproxy/proxy/wire"
)

// A framed standby socket (its token reserved with wire.SocketMode.Framed) carries one client
// after another: the engine frames the client's bytes, and once an end frame went each way it
// parks the socket again (Stats.StandbyReused). The private side here is a relay awaiting the
// socket framed, as the private proxy does, pairing each client with a new backend connection.

// framedPrivate plays the private proxy on a framed standby socket: it awaits the socket on the
// relay, pairs each client with a new connection to the backend, and awaits it again when the
// relay hands it back.
type framedPrivate struct {
	t       testing.TB
	r       *relay.Relay
	backend netip.AddrPort
	kept    chan int // the socket's descriptor, each time it came back (-1: closed)
	gone    chan error
	// keepOnce: the first time the socket comes back, the test takes it (from kept) instead of
	// the private side awaiting it again.
	keepOnce bool
}

func (p *framedPrivate) First(fd int, data []byte) (relay.Pairing, error) {
	peer, err := relay.Connect(p.backend, patience)
	if err != nil {
		return relay.Pairing{}, err
	}
	return relay.Pairing{Peer: peer, Tag: "private", Keep: p}, nil
}

func (p *framedPrivate) Gone(err error) { p.gone <- err }

func (p *framedPrivate) Keep(fd int) {
	p.kept <- fd
	if fd >= 0 && !p.keepOnce {
		if err := p.r.AwaitFramed(fd, nil, time.Minute, p); err != nil {
			p.t.Errorf("await the kept socket again: %v", err)
		}
	}
}

// awaitFramed hands the private end of a parked socket to the rig's relay as a framed standby
// socket; keepOnce as in framedPrivate.
func awaitFramed(t testing.TB, r *rig, priv net.Conn, keepOnce bool) *framedPrivate {
	t.Helper()
	rc, err := priv.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || fd < 0 {
		t.Fatalf("dup: %v", err)
	}
	_ = priv.Close()
	p := &framedPrivate{t: t, r: r.relay, backend: netip.MustParseAddrPort(r.backend.Addr().String()),
		kept: make(chan int, 16), gone: make(chan error, 1), keepOnce: keepOnce}
	if err := r.relay.AwaitFramed(fd, nil, time.Minute, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFramedStandbySocketServesClientsInTurn(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	toks, _, err := r.eng.Reserve(operator, 1, wire.SocketMode{Framed: true})
	if err != nil {
		t.Fatal(err)
	}
	priv := awaitFramed(t, r, park(t, r, toks[0]), false)
	const clients = 4
	var fd int
	for i := range clients {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: patience}, "tcp", r.cfg.PublicAddr, r.clientTC)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if err := echo(c, []byte("client "+string(rune('a'+i)))); err != nil {
			t.Fatalf("client %d: echo: %v", i, err)
		}
		_ = c.Close()
		// The private side hands the socket back first or second; either way both sides keep it.
		select {
		case got := <-priv.kept:
			if got < 0 {
				t.Fatalf("client %d: the private side's relay closed the framed socket", i)
			}
			if i > 0 && got != fd {
				t.Errorf("client %d: the private side kept descriptor %d, before %d", i, got, fd)
			}
			fd = got
		case err := <-priv.gone:
			t.Fatalf("client %d: the framed socket was closed: %v", i, err)
		case <-time.After(2 * patience):
			t.Fatalf("client %d: the private side did not get the socket back", i)
		}
		wantCounter(t, "StandbyReused", r.eng.Stats().StandbyReused.Load, int64(i+1))
		wantParked(t, r, 1)
	}
	// One socket, one token: every client went through it, none took the notice path.
	noNotice(t, r)
	wantStandbyStats(t, r, 1, clients, 0)
}

// A framed socket whose private side closes it (a FIN instead of an end frame) is not parked
// again: the client still gets its end of stream, and the socket is gone from the table.
func TestFramedStandbySocketClosedByPrivateSideIsNotKept(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	toks, _, err := r.eng.Reserve(operator, 1, wire.SocketMode{Framed: true})
	if err != nil {
		t.Fatal(err)
	}
	priv := park(t, r, toks[0])
	client := dialFrom(t, "127.0.0.1", r.cfg.PublicAddr)
	tc := tls.Client(client, r.clientTC)
	_ = tc.SetDeadline(time.Now().Add(2 * patience))
	go func() { _ = tc.Handshake() }()
	// The hello arrives in one data frame.
	hdr := make([]byte, relay.FrameHeader)
	_ = priv.SetReadDeadline(time.Now().Add(patience))
	if _, err := io.ReadFull(priv, hdr); err != nil {
		t.Fatalf("private side: %v", err)
	}
	if hdr[0] != relay.FrameData || int(hdr[1])<<16|int(hdr[2])<<8|int(hdr[3]) == 0 {
		t.Fatalf("the private side's first bytes are not a data frame: % x", hdr)
	}
	_ = priv.Close()
	_ = client.SetReadDeadline(time.Now().Add(patience))
	buf := make([]byte, 64)
	if n, err := client.Read(buf); err == nil {
		t.Fatalf("the client read %d bytes from a private side that sent none", n)
	}
	time.Sleep(50 * time.Millisecond)
	if n := r.eng.Stats().StandbyReused.Load(); n != 0 {
		t.Errorf("StandbyReused = %d after the private side closed its socket", n)
	}
	wantParked(t, r, 0)
}

package relay

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"epsproxy/internal/testnet"
)

// TestConnectRelays: a socket from Connect, given to Add at once with prefixes for both
// sides, reaches a real listener and relays both ways until both ends finish; over IPv4,
// IPv6 and an IPv4-mapped IPv6 address.
func TestConnectRelays(t *testing.T) {
	for _, tc := range []struct{ listen, dial string }{
		{"127.0.0.1", "127.0.0.1"},
		{"::1", "::1"},
		{"127.0.0.1", "::ffff:127.0.0.1"},
	} {
		t.Run(tc.dial, func(t *testing.T) {
			ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.ParseIP(tc.listen)})
			if err != nil {
				if tc.listen == "::1" {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			r, done := testRelay(t, Config{})
			ap := netip.AddrPortFrom(netip.MustParseAddr(tc.dial), uint16(ln.Addr().(*net.TCPAddr).Port))
			fd, err := Connect(ap, testTimeout)
			if err != nil {
				t.Fatalf("Connect(%v): %v", ap, err)
			}
			client, b := unixPair(t)
			if err := r.Add(fd, b, []byte("to server:"), []byte("to client:"), "connected"); err != nil {
				t.Fatal(err)
			}
			server := accept(t, ln)
			fromClient, fromServer := randomBytes(1, 100_000), randomBytes(2, 70_000)
			atC, atS := exchange(t, client, server, fromClient, fromServer)
			if want := append([]byte("to server:"), fromClient...); !bytes.Equal(atS, want) {
				t.Errorf("server got %d bytes, want %d", len(atS), len(want))
			}
			if want := append([]byte("to client:"), fromServer...); !bytes.Equal(atC, want) {
				t.Errorf("client got %d bytes, want %d", len(atC), len(want))
			}
			st := waitStats(t, done, 1)[0]
			if st.Reason != ReasonDone || st.Err != nil || st.Tag != "connected" ||
				st.AToB != int64(len("to client:")+len(fromServer)) || st.BToA != int64(len("to server:")+len(fromClient)) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// connectRefused connects to a port nothing listens on and returns the socket with the
// connect still under way. Loopback sometimes refuses before connect returns, which leaves
// nothing for the relay to report, so that case is tried again.
func connectRefused(t *testing.T) int {
	t.Helper()
	ap := netip.MustParseAddrPort(testnet.FreeAddr(t))
	for try := 0; ; try++ {
		fd, err := Connect(ap, testTimeout)
		if err == nil {
			return fd
		}
		if !errors.Is(err, unix.ECONNREFUSED) || try == 20 {
			t.Fatalf("Connect(%v): %v", ap, err)
		}
	}
}

// TestConnectRefused: a connect refused after Connect returned ends the pair with
// ReasonFailed and an error that is ECONNREFUSED on the connecting side, whether or not
// a prefix was waiting to go to it (the private proxy's case: the client's hello), and
// the other side's connection is closed.
func TestConnectRefused(t *testing.T) {
	r, done := testRelay(t, Config{})
	for _, hello := range [][]byte{nil, []byte("hello")} {
		client, a := unixPair(t)
		fd := connectRefused(t)
		if err := r.Add(a, fd, nil, hello, "refused"); err != nil {
			t.Fatal(err)
		}
		st := waitStats(t, done, 1)[0]
		var pe *PairError
		if st.Reason != ReasonFailed || !errors.Is(st.Err, unix.ECONNREFUSED) || !errors.As(st.Err, &pe) || pe.Side != "b" {
			t.Fatalf("hello %q: pair ended with %v, %v; want ReasonFailed, ECONNREFUSED on side b", hello, st.Reason, st.Err)
		}
		if st.BToA != 0 {
			t.Errorf("hello %q: %d bytes delivered back to a from a refused connect", hello, st.BToA)
		}
		if err := readEnd(client); isTimeout(err) {
			t.Fatalf("hello %q: client's connection still open", hello)
		}
	}
}

// TestConnectSocket: the socket is non-blocking, close-on-exec, sends at once (TCP_NODELAY)
// and gives up on an unanswered connect after about its timeout (TCP_SYNCNT).
func TestConnectSocket(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fd, err := Connect(ln.Addr().(*net.TCPAddr).AddrPort(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK == 0 {
		t.Errorf("file status flags %#x, %v: want O_NONBLOCK", fl, err)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor flags %#x, %v: want FD_CLOEXEC", fl, err)
	}
	if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v == 0 {
		t.Errorf("TCP_NODELAY %d, %v", v, err)
	}
	if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_SYNCNT); err != nil || v != synRetries(10*time.Second) {
		t.Errorf("TCP_SYNCNT %d, %v; want %d", v, err, synRetries(10*time.Second))
	}

	if fd, err := Connect(netip.AddrPort{}, time.Second); err == nil {
		_ = unix.Close(fd)
		t.Error("Connect to the zero AddrPort succeeded")
	}
}

// synRetries gives the fewest SYN retransmissions whose total wait (1 s, then doubling,
// plus the last wait: 3 s, 7 s, 15 s, 31 s, 63 s ...) reaches the timeout.
func TestSynRetries(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		want    int
	}{
		{0, 1},
		{500 * time.Millisecond, 1},
		{3 * time.Second, 1},
		{3*time.Second + 1, 2},
		{5 * time.Second, 2},
		{7 * time.Second, 2},
		{10 * time.Second, 3},
		{60 * time.Second, 5},
		{127 * time.Second, 6},
		{time.Duration(1<<63 - 1), 33},
	} {
		if got := synRetries(tc.timeout); got != tc.want {
			t.Errorf("synRetries(%v) = %d, want %d", tc.timeout, got, tc.want)
		}
	}
}

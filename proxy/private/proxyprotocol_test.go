package private

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"epsproxy/bench/load"
	"epsproxy/epsclient"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy/wire"
)

var clientAddrs = wire.Addresses{Source: netip.MustParseAddrPort("127.0.0.2:40000"), Destination: netip.MustParseAddrPort("127.0.0.1:4433")}

func TestProxyProtocolSettings(t *testing.T) {
	ok := Settings{InternalEndpoint: "127.0.0.1:8888", ProxyProtocol: "v2", Announce: []Announcement{
		{Domain: "a.example", Proxy: "pub", ProxyProtocol: "off"}, {Domain: "b.example", Proxy: "pub", ProxyProtocol: "v2"}, {Domain: "c.example", Proxy: "pub"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s   Settings
		key string
	}{
		{Settings{InternalEndpoint: "127.0.0.1:8888", ProxyProtocol: "v1"}, "proxy_protocol"},
		{Settings{InternalEndpoint: "127.0.0.1:8888", ProxyProtocol: "V2"}, "proxy_protocol"},
		{Settings{InternalEndpoint: "127.0.0.1:8888", ProxyProtocol: "true"}, "proxy_protocol"},
		{Settings{InternalEndpoint: "127.0.0.1:8888", Announce: []Announcement{{Domain: "a.example", Proxy: "pub"}, {Domain: "b.example", Proxy: "pub", ProxyProtocol: "on"}}}, "announce[1].proxy_protocol"},
	} {
		var ke *config.KeyError
		if err := c.s.Validate(); !errors.As(err, &ke) || ke.Key != c.key {
			t.Errorf("%+v: %v, want an error naming %s", c.s, err, c.key)
		}
	}
}

// Which names' servers get the addresses, as the settings file says at start and after a reload
// changes it.
func TestProxyProtocolPolicy(t *testing.T) {
	for _, c := range []struct {
		name     string
		def      string
		announce []Announcement
		wants    map[string]bool // name (to pub) -> its server gets them
	}{
		{"off by default", "", []Announcement{{Domain: "a.example", Proxy: "pub"}},
			map[string]bool{"a.example": false, "runtime.example": false}},
		{"one name", "", []Announcement{{Domain: "a.example", Proxy: "pub", ProxyProtocol: "v2"}, {Domain: "b.example", Proxy: "pub"}},
			map[string]bool{"a.example": true, "b.example": false, "runtime.example": false}},
		{"default on, one name off", "v2", []Announcement{{Domain: "a.example", Proxy: "pub", ProxyProtocol: "off"}},
			map[string]bool{"a.example": false, "runtime.example": true}},
	} {
		s := Settings{InternalEndpoint: "127.0.0.1:8888", ProxyProtocol: c.def, Announce: c.announce}
		p := newProxy(t, s, t.TempDir())
		check := func(when string, flip bool) {
			for domain, want := range c.wants {
				a, ok := p.anns.get(domain, "pub", time.Now())
				if !ok {
					a = Announcement{Domain: domain, Proxy: "pub", Owner: "op.test"} // as announceConnection stores it
				}
				if got := p.proxyProtocol(a); got != want != flip {
					t.Errorf("%s, %s: %s gets addresses: %v, want %v", c.name, when, domain, got, want != flip)
				}
			}
		}
		check("at start", false)
		// A reload that flips the default and every name's own setting flips every name.
		r := s
		r.ProxyProtocol = map[string]string{"": "v2", "v2": "off"}[c.def]
		r.Announce = nil
		for _, a := range c.announce {
			a.ProxyProtocol = map[string]string{"": "", "v2": "off", "off": "v2"}[a.ProxyProtocol]
			r.Announce = append(r.Announce, a)
		}
		if _, err := p.Reload(r); err != nil {
			t.Fatal(err)
		}
		check("after a reload", true)
	}
}

func TestForwardedHeaders(t *testing.T) {
	for _, c := range []struct{ ip, xff, fwd string }{
		{"127.0.0.2", "127.0.0.2", "for=127.0.0.2;proto=https"},
		{"::ffff:10.0.0.1", "10.0.0.1", "for=10.0.0.1;proto=https"},
		{"2001:db8::7", "2001:db8::7", `for="[2001:db8::7]";proto=https`},
		{"fe80::1%eth0", "fe80::1", `for="[fe80::1]";proto=https`},
	} {
		h := http.Header{"X-Forwarded-For": {"6.6.6.6"}, "Forwarded": {"for=6.6.6.6"}}
		setClientHeaders(h, netip.MustParseAddr(c.ip))
		if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != c.xff {
			t.Errorf("%s: X-Forwarded-For %q, want %q", c.ip, got, c.xff)
		}
		if got := h.Values("Forwarded"); len(got) != 1 || got[0] != c.fwd {
			t.Errorf("%s: Forwarded %q, want %q", c.ip, got, c.fwd)
		}
	}
}

// ppRig is a private proxy with one standby pool towards a public proxy the test plays
// (pub) and an internal server that records each connection's bytes up to the end of stream.
type ppRig struct {
	p        *Proxy
	sp       *standbyPool
	pub      net.Listener
	received chan []byte
}

func newPPRig(t *testing.T) *ppRig {
	t.Helper()
	internal, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { internal.Close() })
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	r := &ppRig{pub: pub, received: make(chan []byte, 16)}
	r.p = newProxy(t, Settings{InternalEndpoint: internal.Addr().String(), Announce: []Announcement{
		{Domain: "pp.app.example", Proxy: "pub.test", ProxyProtocol: "v2"},
		{Domain: "plain.app.example", Proxy: "pub.test"},
	}}, t.TempDir())
	go func() {
		for {
			c, err := internal.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(c)
				r.received <- b
				_, _ = io.WriteString(c, "served")
			}()
		}
	}()
	r.sp = newStandbyPool(r.p, "pub.test", "")
	t.Cleanup(r.sp.close)
	close(r.sp.done) // the pool's goroutine is not run: the tests dial by hand
	return r
}

// client dials a standby socket (addressed or not), plays the public proxy relaying a client to
// it with first written first, half-closes, and returns what came back before the end of stream.
func (r *ppRig) client(t *testing.T, addressed bool, first []byte) []byte {
	t.Helper()
	if !r.sp.dial(ticket{endpoint: r.pub.Addr().String(), addressed: addressed}) {
		t.Fatal("standby dial failed")
	}
	c, err := r.pub.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, wire.TokenSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	answer, _ := io.ReadAll(c)
	return answer
}

func helloFor(t *testing.T, name string) []byte {
	t.Helper()
	h, err := load.ClientHelloRecord(&tls.Config{ServerName: name})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// On a standby socket that asked for the addresses, the private proxy strips the public proxy's
// header; the internal server of a name set to v2 gets a header of the private proxy's own with
// the same addresses, then the hello; another name's server gets the hello alone. A v2 name whose
// client comes without addresses, and a malformed header, close the client: nothing reaches the
// internal server.
func TestStandbyAddressHeader(t *testing.T) {
	r := newPPRig(t)
	if !r.sp.asks().ClientAddress {
		t.Fatal("the pool does not ask for the addresses")
	}
	header := wire.AppendAddressHeader(nil, clientAddrs)
	bad := func(b []byte) func([]byte) []byte { return func([]byte) []byte { return b } }
	for _, c := range []struct {
		name      string
		domain    string
		addressed bool
		head      func(good []byte) []byte // what the public side writes before the hello
		served    bool
		header    bool // the internal server gets the address header first
	}{
		{"v2 name", "pp.app.example", true, bytes.Clone, true, true},
		{"name without the setting", "plain.app.example", true, bytes.Clone, true, false},
		{"no header from an instance that does not write it", "plain.app.example", true, bad(nil), true, false},
		{"v2 name without a header", "pp.app.example", true, bad(nil), false, false},
		{"v2 name on a socket that did not ask", "pp.app.example", false, bad(nil), false, false},
		{"v2 name with a LOCAL header", "pp.app.example", true, bad(wire.AppendAddressHeader(nil, wire.Addresses{})), false, false},
		{"bad signature", "plain.app.example", true, func(g []byte) []byte { g[8] = 'X'; return g }, false, false},
		{"bad family", "plain.app.example", true, func(g []byte) []byte { g[13] = 0x31; return g }, false, false},
		{"oversize length", "plain.app.example", true, func(g []byte) []byte { g[14], g[15] = 0xff, 0xff; return g }, false, false},
	} {
		hello := helloFor(t, c.domain)
		answer := r.client(t, c.addressed, append(c.head(bytes.Clone(header)), hello...))
		if !c.served {
			if len(answer) != 0 {
				t.Errorf("%s: the client got %q, want it closed", c.name, answer)
			}
			select {
			case b := <-r.received:
				t.Errorf("%s: the internal server got %d bytes", c.name, len(b))
			default:
			}
			continue
		}
		if string(answer) != "served" {
			t.Errorf("%s: the client got %q", c.name, answer)
			continue
		}
		want := hello
		if c.header {
			want = append(bytes.Clone(header), hello...)
		}
		if got := <-r.received; !bytes.Equal(got, want) {
			t.Errorf("%s: the internal server got %d bytes starting %q, want %d starting %q", c.name, len(got), got[:min(16, len(got))], len(want), want[:16])
		}
	}
}

// On a dial-back, the addresses come in incomingConnection; a v2 name without them is refused
// before anything is dialled, and its clients never reach the server without them.
func TestIncomingConnectionAddresses(t *testing.T) {
	r := newPPRig(t)
	s := *r.p.live()
	s.Endpoints = map[string]string{"pub.test": r.pub.Addr().String()}
	if _, err := r.p.Reload(s); err != nil {
		t.Fatal(err)
	}
	incoming := func(domain string, addrs wire.Addresses) error {
		ps := wire.IncomingParams{Domain: domain, Endpoint: r.pub.Addr().String(), Source: addrs.Source, Destination: addrs.Destination}
		_, err := epsclient.Typed(r.p.incomingConnection)(context.Background(), call(wire.IncomingConnection, "pub.test", nil, ps))
		return err
	}
	var je *jsonrpc.Error
	if err := incoming("pp.app.example", wire.Addresses{}); !errors.As(err, &je) || je.Code != jsonrpc.CodeBadRequest {
		t.Errorf("a v2 name without addresses: %v, want 400", err)
	}
	if len(r.p.dials) != 0 {
		t.Fatal("a dial-back was queued for it")
	}
	for _, c := range []struct {
		domain string
		addrs  wire.Addresses
		header bool
	}{
		{"pp.app.example", clientAddrs, true},
		{"plain.app.example", clientAddrs, false},
		{"plain.app.example", wire.Addresses{}, false},
	} {
		if err := incoming(c.domain, c.addrs); err != nil {
			t.Fatalf("%s: %v", c.domain, err)
		}
		go r.p.dialBack(<-r.p.dials)
		conn, err := r.pub.Accept()
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, make([]byte, wire.TokenSize)); err != nil {
			t.Fatal(err)
		}
		hello := helloFor(t, c.domain)
		_, _ = conn.Write(hello)
		_ = conn.(*net.TCPConn).CloseWrite()
		_, _ = io.ReadAll(conn)
		conn.Close()
		got := <-r.received
		want := hello
		if c.header {
			want = append(wire.AppendAddressHeader(nil, c.addrs), hello...)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s with %v: the internal server got %d bytes starting %q, want %d starting %q", c.domain, c.addrs, len(got), got[:min(16, len(got))], len(want), want[:16])
		}
	}
}

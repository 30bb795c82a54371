package private

import (
	"errors"
	"net/netip"

	"epsproxy/proxy/wire"
)

// What an internal server learns of a client (proxy_protocol). A name set to "v2" has each
// client's addresses sent to its internal server: a PROXY protocol v2 header before the
// client's first byte (wire.AppendAddressHeader), or, where this proxy terminates TLS, the
// X-Forwarded-For and Forwarded headers of each request (terminate.go). Other names' servers get
// the client's bytes alone, exactly as before.
//
// The addresses come from the public proxy the name was announced to, never from the client:
// on a dial-back in incomingConnection's params (an EPS call from that public proxy,
// authenticated by its node), on a standby socket in the address header the public proxy writes
// before the replayed hello, on a socket this proxy dialed with a token it reserved with
// client_address. A client's own bytes start with a TLS record the public proxy parsed as a
// ClientHello, which can never read as that header.
//
// This proxy asks every public proxy for the addresses on its standby sockets, as a dial-back
// always brings them, whether or not a name wants them now: a reload may set a name to "v2" (or
// the block's default) while sockets reserved before it wait for clients, and each of them must
// then carry what the name needs. The header costs the public proxy one short prefix on the
// replayed hello, and this proxy strips it before anything reaches an internal server. A name
// that wants the addresses and cannot have them (a public proxy of an earlier version sends
// none) is refused: its server is never told a client came from the proxy's own address.

// errNoClientAddress: a client of a name set to proxy_protocol "v2" came without its addresses.
var errNoClientAddress = errors.New("private: the client's addresses are not known, and its name's proxy_protocol wants them")

// proxyProtocol reports whether a's internal server is told its clients' addresses.
func (p *Proxy) proxyProtocol(a Announcement) bool {
	v := a.ProxyProtocol
	if v == "" {
		v = p.live().ProxyProtocol
	}
	return v == ProxyProtocolV2
}

// addressHead appends to b what a's internal server gets before the client's bytes: the
// address header if a wants it (nothing otherwise), or errNoClientAddress if it wants it and
// the addresses are not known.
func (p *Proxy) addressHead(b []byte, a Announcement, addrs wire.Addresses) ([]byte, error) {
	if !p.proxyProtocol(a) {
		return b, nil
	}
	if !addrs.Known() {
		return b, errNoClientAddress
	}
	return wire.AppendAddressHeader(b, addrs), nil
}

// forwardedFor is the client address a terminated connection's requests name to a's internal
// server (X-Forwarded-For, Forwarded): the client's, if a wants it; none otherwise.
func (p *Proxy) forwardedFor(a Announcement, addrs wire.Addresses) netip.Addr {
	if !p.proxyProtocol(a) || !addrs.Known() {
		return netip.Addr{}
	}
	return addrs.Source.Addr()
}

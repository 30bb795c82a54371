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
// This proxy asks a public proxy for the addresses on its standby sockets only if a name it may
// serve through it wants them: the block's default says "v2" (names added at run time take the
// default), or a name announced to it in the settings file does. Settings do not change while
// the process runs, so every standby socket of a public proxy is reserved under the same rule
// and no client meets a socket that lacks what its name needs. A name that wants the addresses
// and cannot have them (a public proxy of an earlier version sends none) is refused: its
// server is never told a client came from the proxy's own address.

// errNoClientAddress: a client of a name set to proxy_protocol "v2" came without its addresses.
var errNoClientAddress = errors.New("private: the client's addresses are not known, and its name's proxy_protocol wants them")

// proxyProtocol reports whether a's internal server is told its clients' addresses.
func (p *Proxy) proxyProtocol(a Announcement) bool {
	v := a.ProxyProtocol
	if v == "" {
		v = p.s.ProxyProtocol
	}
	return v == ProxyProtocolV2
}

// addressPublics returns the public proxies this proxy asks for the clients' addresses on its
// standby sockets, or all (true) when the block's default wants them.
func addressPublics(s Settings) (all bool, publics map[string]bool) {
	publics = map[string]bool{}
	for _, a := range s.Announce {
		if a.ProxyProtocol == ProxyProtocolV2 || (a.ProxyProtocol == "" && s.ProxyProtocol == ProxyProtocolV2) {
			publics[a.Proxy] = true
		}
	}
	return s.ProxyProtocol == ProxyProtocolV2, publics
}

// wantsAddresses reports whether this proxy asks the public proxy for the clients' addresses
// on its standby sockets.
func (p *Proxy) wantsAddresses(public string) bool {
	return p.addrAll || p.addrFrom[public]
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

package wire

import (
	"net/netip"
	"time"
)

// Announcement is one name in an announceConnections call. No expiry means until withdrawn; an
// expiry at most 7 days ahead is a timed announcement, one at or before now withdraws the name.
type Announcement struct {
	Domain    string     `json:"domain"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// AnnounceParams are announceConnections' params.
type AnnounceParams struct {
	Connections []Announcement `json:"connections"`
}

// AnnounceResult has one entry per name, in order: null when accepted, else the error object
// (403 not allowed, 409 held by another operator, 400 invalid, 507 table full). Its element type
// is *jsonrpc.Error; it is left to the caller so that this package imports nothing.

// Listed is one entry of a public proxy's getAnnouncements: a name the caller announced.
type Listed struct {
	Domain    string     `json:"domain"`
	Operator  string     `json:"operator"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Served is one entry of a private proxy's getAnnouncements: a name, the public proxy it is
// announced to, where its clients go (empty: the private proxy's internal endpoint) and who
// added it (empty: the private proxy's settings). A caller sees Target and Owner only for names
// it added itself (the private proxy's own operator sees all).
type Served struct {
	Domain    string     `json:"domain"`
	Proxy     string     `json:"proxy"`
	Target    string     `json:"target,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Owner     string     `json:"owner,omitempty"`
}

// IncomingParams are incomingConnection's params: a client for Domain waits at the public proxy
// under Token; dial Endpoint (host:port) and present it. Source is the client's address and port
// as the public proxy accepted it, Destination the address and port of the public proxy's TLS
// listener it connected to ("203.0.113.7:51234", "[2001:db8::7]:443"); both are left out by a
// public proxy that does not send them, and of a call repeated for a private proxy that refused
// them as unknown fields.
type IncomingParams struct {
	Domain      string         `json:"domain"`
	Token       Token          `json:"token"`
	Endpoint    string         `json:"endpoint"`
	Source      netip.AddrPort `json:"source,omitzero"`
	Destination netip.AddrPort `json:"destination,omitzero"`
}

// Addresses are the client's addresses the params carry (not Known when left out).
func (p IncomingParams) Addresses() Addresses {
	return Addresses{Source: p.Source, Destination: p.Destination}
}

// Ack is the result of a call that only acknowledges ({"message": "ok"}).
type Ack struct {
	Message string `json:"message"`
}

// OK is the acknowledgement.
var OK = Ack{Message: "ok"}

// ReserveParams are reserveConnections' params: how many standby tokens the caller wants
// (1 to MaxReserve; 0 asks only where to dial: the result's Endpoint and Instances) and, for a public proxy of several instances, the internal endpoint of the
// instance they are for (one of ReserveResult.Instances; empty: the instance that answers).
// Its SocketMode says what the sockets presented with these tokens carry.
type ReserveParams struct {
	Count    int    `json:"count"`
	Endpoint string `json:"endpoint,omitempty"`
	SocketMode
}

// SocketMode is how a standby socket carries its clients, asked for in ReserveParams and
// confirmed in ReserveResult (a public proxy of an earlier version ignores what it does not
// know, and its result then confirms nothing).
//
// ClientAddress: a client relayed to the socket is preceded by the address header
// (AppendAddressHeader) carrying its addresses; without it the socket gets the client's bytes
// alone, as it always did.
//
// Framed: after its token the socket carries its clients in frames (engine/relay's frame.go:
// 4-byte header, data frames, an end frame for each direction's end instead of a FIN), one client
// after another: once an end frame went each way, both proxies keep the socket (the public proxy
// parks it again, the private proxy waits on it for the next client) instead of closing it, so
// a client costs one TCP connection fewer between the proxies. The address header, when asked
// for, leads each client's bytes inside its frames. Anything that is not a frame closes the
// socket.
type SocketMode struct {
	ClientAddress bool `json:"client_address,omitempty"`
	Framed        bool `json:"framed,omitempty"`
}

// ReserveResult tells the caller where to dial its standby connections and with which tokens;
// each token is good for one connection until ExpiresAt. Instances lists the internal endpoints of
// every live instance of a public proxy that runs several (absent for one that runs alone): the
// caller keeps standby connections at each, and accepts dial-backs from each. SocketMode
// confirms what the tokens were reserved with (ReserveParams.SocketMode).
type ReserveResult struct {
	Tokens    []Token   `json:"tokens"`
	Endpoint  string    `json:"endpoint"`
	ExpiresAt time.Time `json:"expires_at"`
	Instances []string  `json:"instances,omitempty"`
	SocketMode
}

// AnnounceConnectionParams are announceConnection's params: an operator asks a private proxy to
// serve Domain through the public proxy Proxy, relaying its clients to Target.
type AnnounceConnectionParams struct {
	Domain    string     `json:"domain"`
	Proxy     string     `json:"proxy"`
	Target    string     `json:"target,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Grant is what the directory grants an operator for a proxy's "proxy" service: the names (and,
// with a leading dot, every name under a suffix) it may announce there.
type Grant struct {
	AllowedDomains []string `json:"allowed_domains"`
}

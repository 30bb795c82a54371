// Package wire is the contract between the two proxies: the EPS methods each one serves, their
// params and results as they travel in JSON-RPC, the one-time token a private proxy presents
// first on a public proxy's internal port, and the address header (a PROXY protocol v2 header)
// that carries a client's addresses in front of its bytes where the private proxy asked for it.
// It is written once, here; proxy/public, proxy/private and the engine (which reads the token
// on the internal port and writes the address header) import it.
//
// The JSON forms are those of the original EPS proxy where it had the method
// (announceConnections, getAnnouncements, incomingConnection); reserveConnections and
// announceConnection are this project's.
//
// It holds types, names, limits and the token and address header codecs only. It must not hold
// behaviour or I/O, nor import anything beyond the standard library, so that every layer may use
// it.
package wire

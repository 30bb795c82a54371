// Package public is the public proxy: it accepts TLS clients on the public port, routes each by
// its SNI to the private proxy that announced the name, and splices the pair once the private side
// dials back with the token.
//
// Typical usage (what `proxy run public` does):
//
//	p, err := public.New(base, *settings.Public)
//	err = p.Start()   // announcements loaded from disk before the first client is accepted
//	defer p.Stop(ctx) // stops accepting, drains relayed pairs, saves announcements
//
// It wires engine (the reactor), matcher (the announcement table and its file), engine/relay and
// epsclient together and serves three EPS methods to private proxies: announceConnections,
// getAnnouncements and reserveConnections (one-time tokens for standby connections, which the
// engine parks and relays a client to at once, see engine/standby.go). For every matched client
// with no standby connection it calls incomingConnection at the announcing operator through the
// EPS pool; when that call fails the client is closed at once.
//
// Announcements are accepted only for names under the caller's allowed_domains, which the
// directory grants the caller for this operator's "proxy" service and which this package reads
// from the `_client` entry the EPS node sets. The method names and message forms are
// proxy/wire's; settings.go holds the `public` block, announce.go and standby.go the methods,
// metrics.go the Prometheus metrics (the engine's Observer, and the gauges read at each scrape).
// It owns no socket code of its own and must not hold any: sockets are the engine's and the
// relay's.
package public

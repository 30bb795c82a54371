// Package private is the private proxy: it opens no port to the outside. It announces its names
// to public proxies through the EPS network, and when a public proxy tells it a client is waiting
// (incomingConnection, with a one-time token), it dials the internal server, dials back to the
// public proxy's endpoint, sends the 32 token bytes and splices the two sockets together. TLS stays
// end to end between the client and the internal server.
//
// Ahead of any client it also keeps Settings.Standby sockets dialed in at every public proxy it
// announces to, each with a token reserved in batches through reserveConnections (standby.go): a
// client relayed to one costs no EPS round trip, and its name comes from the replayed hello's SNI,
// checked against the announcements made to that public proxy. The standby sockets wait in the
// relay (relay.Await), not in goroutines: the hello is read, routed, and paired with a
// non-blocking connect to the internal server on the relay loop that saw it arrive.
//
// Typical usage (what `proxy run private` does):
//
//	p, err := private.New(base, *settings.Private)
//	err = p.Start()   // restores announcements, serves its EPS endpoint, starts announcing
//	defer p.Stop(ctx) // stops taking connections, drains relayed pairs, saves announcements
//
// Announcements (configured ones, and ones an authorized operator adds at run time with
// announceConnection) are persisted in the data directory and re-sent at start (retrying with
// backoff until the public proxy accepts), every ReannounceEvery, and whenever the set changes.
//
// It trusts an incomingConnection only from the public proxy the domain was announced to (the
// caller named by the node-set `_client`), and only dials an endpoint that public proxy is
// pinned to when a pin is configured. It must not know how the public side routes or buffers.
package private

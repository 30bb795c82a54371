// Package private is the private proxy: it opens no port to the outside. It announces its names
// to public proxies through the EPS network, and when a public proxy tells it a client is waiting
// (incomingConnection, with a one-time token), it dials the internal server, dials back to the
// public proxy's endpoint, sends the 32 token bytes and splices the two sockets together. TLS stays
// end to end between the client and the internal server.
//
// Ahead of any client it also keeps Settings.Standby sockets dialed in at every public proxy it
// announces to, each with a token reserved in batches through reserveConnections: a client
// relayed to one costs no EPS round trip, and its name comes from the replayed hello's SNI,
// matched (matcher.Match) against the announcements made to that public proxy. The standby
// sockets wait in the relay (relay.Await), not in goroutines: the hello is read, routed, and
// paired with a non-blocking connect to the internal server on the relay loop that saw it arrive.
//
// Typical usage (what `proxy run private` does):
//
//	p, err := private.New(base, settings.Private)
//	err = p.Start()   // restores announcements, serves its EPS endpoint, starts announcing
//	defer p.Stop(ctx) // stops taking connections, drains relayed pairs, saves announcements
//
// Files, by what they hold:
//   - private.go: the Proxy, its life cycle and stats; settings.go: the `private` block.
//   - announcements.go: the announcement set, an immutable snapshot behind an atomic pointer;
//     store.go: its file. announcer.go sends it to the public proxies; methods.go serves
//     announceConnection and getAnnouncements.
//   - dialback.go: incomingConnection and the dial-back pool; dialer.go: how addresses are
//     reached (relay.Connect on loops, one net.Dialer elsewhere).
//   - standby_manager.go (a pool per public proxy), standby_pool.go (keeping one supplied),
//     standby_tokens.go (its reserved tokens), standby_socket.go (a socket the relay holds, and
//     routing its client on the loop), standby_fallback.go (clients that need blocking calls).
//   - terminate.go: the optional TLS termination.
//   - metrics.go: the Prometheus metrics (clients per announced domain, why they were refused,
//     and the gauges read at each scrape).
//   - proxyprotocol.go: which internal servers are told their clients' addresses
//     (proxy_protocol), where the addresses come from, and which public proxies are asked for
//     them.
//
// Announcements (configured ones, and ones an authorized operator adds at run time with
// announceConnection) are persisted in the data directory and re-sent at start (retrying with
// backoff until the public proxy accepts), every ReannounceEvery, and whenever the set changes.
//
// Concurrency: relay loops run standbySocket's methods; they read the announcements' snapshot
// and the standby pool's counters, and make only calls that return at once. No lock a loop
// takes is ever held across I/O: announcement writers publish a new snapshot, then save the
// file under a lock of their own.
//
// It trusts an incomingConnection only from the public proxy the domain was announced to (the
// caller named by the node-set `_client`), and only dials an endpoint that public proxy is
// pinned to when a pin is configured. The method names and message forms are proxy/wire's. It
// must not know how the public side routes or buffers, nor touch a socket's bytes on a relay loop
// beyond reading the replayed hello.
package private

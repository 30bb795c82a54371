// Package engine is the public proxy's data path: a gnet reactor that reads each client's
// ClientHello without a goroutine per connection, routes it by SNI, waits for the private side to
// dial back with the connection's token, and hands both sockets to the splice relay.
//
// Typical usage (the public proxy's wiring does this):
//
//	e, err := engine.New(cfg, table, notifier, rl, logger)
//	go e.Run()            // blocks until Stop
//	<-e.Ready()
//	...
//	e.Cancel(token)       // from the EPS call's failure callback: close the waiting client
//	e.Stop(ctx)
//
// One connection's life on the public listener: hello (bytes buffered by gnet, parsed by
// engine/hello on every read, under a hello deadline) → waiting (matched: a 32-byte token is filed
// in the pending table and the Notifier is told; the client stays in gnet, costing no goroutine,
// under the accept deadline) → handed off (the private side presented the token: both sockets are
// dup'ed out of gnet and given to the relay with the buffered hello to replay first). On the
// internal listener a connection must send exactly the 32 token bytes within the token deadline.
//
// Standby connections shortcut this (standby.go): a token made by Reserve parks the internal
// connection that presents it (dup'ed out of gnet) under the operator that reserved it, and a
// routed client whose announcer has a parked socket is handed to the relay with it at once, on the
// client's loop, without a token of its own or a Notice. A standby token may also have been minted
// by another instance of the same public proxy (Mint there) and filed here as its SHA-256 hash
// (AcceptTokens); it parks its socket the same way. The pending table's rule applies: the parked
// list is shared, and whoever takes a socket from it owns it. Parked sockets are watched by the
// standby table's own epoll instance and one goroutine blocked in epoll_wait, which closes a
// parked socket as soon as its private side closes, resets or writes to it.
//
// Concurrency: gnet callbacks run on their event loop; per-loop state (the hello parser, the
// deadline lists) is only touched there. The pending table and the standby table are the
// structures shared between loops (the standby watcher takes the latter's mutex too, briefly).
// Whoever removes a token from the pending table owns the transition (pairing, expiry,
// cancellation), so a client can never be both paired and closed. Work for another loop's connection goes through
// that loop's Execute. The engine never blocks a loop: no EPS calls (Notifier must only enqueue),
// no locks held across I/O.
//
// Each connection's fate (routed to an announcement, relayed, or refused and why) is told to an
// optional Observer (observer.go), which only counts; the engine does not know how.
//
// The engine owns sockets and their phases. It must not know the EPS protocol, how announcements
// are made, or how the relay moves bytes; of the proxies' contract (proxy/wire) it uses only the
// token, the bytes a private proxy presents first on the internal port, the token's hash, and
// the address header it writes in front of a client's bytes on a standby socket whose token was
// reserved with clientAddress (the Notice carries the same addresses on the signaled path).
package engine

// Package relay copies bytes between pairs of connected stream sockets with
// splice(2), driven by a few raw epoll loops instead of goroutines.
//
// Typical usage:
//
//	r, err := relay.New(relay.Config{
//		IdleTimeout: 5 * time.Minute,
//		OnDone: func(s relay.Stats) { metrics <- s }, // runs on a loop: must not block
//	})
//	...
//	// The public proxy hands over the client socket (a dup taken from gnet) and the
//	// private proxy's dial-back socket, replaying the buffered ClientHello to the
//	// private side first:
//	err = r.Add(clientFD, privateFD, nil, hello, sessionInfo)
//	// The private proxy has two *net.TCPConn:
//	err = r.AddConns(publicConn, serverConn, nil, nil, nil)
//	// Or it hands over a standby socket that is still connecting, to be greeted with
//	// a token and paired, on the loop, with whatever standby.First picks once the
//	// client's hello arrives (a socket from relay.Connect, say):
//	standbyFD, err := relay.Connect(publicAddr, 10*time.Second)
//	err = r.Await(standbyFD, token, 2*time.Minute, standby)
//	...
//	err = r.Drain(ctx) // on shutdown: finish what is running, then Close
//
// # What it owns
//
// Once Add (or AddConns, AddConnFD) is called, the relay owns both file descriptors,
// even when it returns an error: it closes them exactly once, after the pair has
// finished (both directions saw end of stream and drained, an error, the idle timeout,
// or Close); likewise a socket given to Await, from the call on, and the socket an
// Awaiter's First returns to pair with it, from the return on. It also owns its epoll
// and eventfd descriptors and a bounded pool of pipes per loop.
//
// The only socket the package creates is Connect's: Connect starts a non-blocking TCP
// connect and returns the descriptor at once. The caller owns it until it hands it
// over as above; from then on the relay owns it like any other, connecting or not, and
// reports a failed connect as the pair's Stats.Err (or to the Awaiter's Gone). Connect
// keeps nothing behind: no goroutine, timer or poller registration waits for the
// connect, which the kernel's SYN retries bound.
//
// It must not touch anything else: it never accepts, resolves names, retries a
// connect, reads a TLS record, or looks at the bytes it moves (an awaited socket's
// first bytes go to its Awaiter, which decides, and may keep a header of them or put
// bytes of its own in front: Pairing); it never closes a descriptor it was not given,
// and no loop ever waits for anything but its next events.
//
// # How it works
//
// Each loop is one goroutine with its own epoll instance. The goroutine parks in Go's
// runtime poller, where the epoll descriptor is registered like a socket, and takes the
// events with non-blocking epoll_wait calls; the system calls on its path are raw calls
// (see the loop type and sys_linux.go for why both matter to the scheduler). Both
// sockets of a pair are registered once, edge-triggered, for input and peer half-close,
// and for output from the first write that finds the socket full (a writable socket
// reports every ACK that frees room); the loop keeps "readable" and "writable" flags
// per socket and a small fixed-size record per pair in a slab, found through the epoll
// data (slot and generation, never a Go pointer). A direction that has bytes to move
// takes a pipe from the loop's pool, splices source to pipe and at once pipe to
// destination, and gives the pipe back when it is empty. Only when the destination is
// full does the direction keep its pipe and stop reading its source until the
// destination becomes writable again, so bytes in flight per direction are bounded by
// one pipe plus the kernel's socket buffers, and TCP flow control pushes back on the
// sender. An idle pair therefore costs two descriptors and one slab record, no pipe and
// no goroutine.
//
// When the pool is at its cap (Config.MaxPipes) or pipes cannot be created, a
// direction copies through the loop's single buffer instead: it peeks at the source
// (MSG_PEEK), writes what the destination accepts and only then consumes that many
// bytes from the source. Nothing is ever held in user memory between events, so the
// fallback is slower but never less bounded, and one stuck reader cannot starve other
// pairs of pipes.
//
// End of stream on one side is passed on as shutdown(SHUT_WR) on the other once
// everything before it has been delivered; the other direction goes on. A pair that
// ends any other way (error, idle timeout, Close) is closed with an abortive close
// (SO_LINGER 0) so that neither peer mistakes a cut-off stream for a complete one.
//
// # Framed sockets
//
// AddFramed and AwaitFramed make one side of a pair framed (frame.go): what goes to it is sent as
// data frames (while a direction's frames stay small, a frame's start is read by copy, up to
// 16 KiB, and written with its 4-byte header in one call; after a large one, the header goes
// with the first splice; a frame holds what the source had queued when it began, so a bulk
// stream sends one header per queue's worth, its rest spliced; a frame announced is always
// finished, even when the stream is cut), what comes from it is unwrapped (while the frames stay
// small, one read by copy of up to 16 KiB at a frame's start takes the header and what came
// behind it, frames and an end frame included, and their payload goes out in one write; after a
// large one, the header is read alone; the rest of a longer frame is spliced, never past its end;
// what a full destination does not take waits in the pair, at most 16 KiB per direction, as a
// prefix a socket did not take at once does; once the other direction has ended, headers are
// read alone, so nothing of the socket's next pair is read), and an end frame stands for a FIN
// both ways. Once an end frame went each way the pair ends and the framed
// socket, clean, goes to the pair's Keeper instead of being closed: the proxies carry one client
// after another over one standby socket this way. It leaves the loop's epoll set when Keep
// returns, unless Keep gave it straight back to the same loop, which then re-points its
// registration instead of removing and adding it, or held it there (Hold: the loop reports the
// waiting socket's events to OnHeld, and AddFramedHeld pairs it again on that loop). A pair that
// ends otherwise closes it (abortively, unless it ended cleanly with a FIN) and tells the Keeper
// so.
//
// # Concurrency
//
// Every exported method is safe from any goroutine. Add and Await never wait for a
// loop: they give the pair its slot under a mutex and register its sockets for it with
// the loop's epoll set, once, so the loop takes it up on its sockets' first event
// rather than on a wake-up of its own, and finds it through that event like any later
// one (an eventfd wakes it for Close, Drain, or a failed registration).
// OnDone and an Awaiter's methods run on the loop, so they must not block and must
// not call Close or Drain, which wait for the loops.
//
// A pair's byte counts are plain fields only its loop touches: nothing is published
// per chunk. Visit has each loop, in turn, read its live pairs' counts out on its own
// goroutine, and OnDone reports the loop a finished pair was on (Stats.Loop), so a
// caller can count the bytes of open connections too, with totals that never go down.
//
// Linux only (the _linux.go files; elsewhere the package has only its Config and
// Stats types); a and b may be TCP or Unix stream sockets.
package relay

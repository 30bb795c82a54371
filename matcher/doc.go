// Package matcher is the public proxy's announcement table: which private
// proxy (operator) has announced which domain name, until when.
//
// Typical use:
//
//	t := matcher.New(matcher.Options{})
//	if _, err := t.Load(path, time.Now()); err != nil { ... }   // before serving
//
//	// JSON-RPC handler (announceConnections), one goroutine at a time or many:
//	errs := t.Announce(caller, allowedDomains, []matcher.Item{
//		{Domain: "app.internal-server.local", ExpiresAt: time.Now().Add(time.Hour)},
//		{Domain: "*.internal-server.local"}, // no expiry
//	}, time.Now())
//	// errs[i] is nil or an *Error with Code() 400/403/409/507 naming the domain.
//	err := t.Save(path)
//
//	// event loops, for every ClientHello:
//	host, ok := matcher.AppendNormalized(buf[:0], sni)
//	a, ok := t.Lookup(host, now)   // a.Operator gets the incomingConnection
//
// # Names
//
// Names are compared in the form Normalize gives them: ASCII lower case,
// one trailing dot dropped, DNS host name syntax (labels of 1..63 bytes of
// [a-z0-9_-], at most 253 bytes). As an extension to the original EPS
// proxy, an operator may announce a wildcard "*.example.com", which
// matches exactly one more label: a.example.com, but neither a.b.example.com
// nor example.com. Lookup tries the exact name first, then the wildcard of
// its parent. Keys are xxhash values of the normalised name; the stored
// name is compared too, so a hash collision cannot misroute a client.
//
// # Ownership and expiry
//
// A name has at most one holder. Another operator's live announcement
// blocks it (ErrTaken); an expired one does not and is replaced, unlike
// the original, which kept expired names taken forever. An expiry must be
// at most MaxExpiry (7 days) ahead; an expiry at or before now is accepted
// and means "already expired", that is, a withdrawal. Times are always
// passed in as now, so callers (and tests) own the clock.
//
// # Concurrency
//
// Lookup, Len and List read an immutable snapshot through an atomic
// pointer: they never block and never see a write half done. Writes
// (Announce, Withdraw, Purge, Load) are serialised by a mutex, build a
// copy-on-write batch and publish it with one pointer swap, so all items of
// one Announce become visible together. The snapshot is split into 1024
// shards by hash, so a write copies only the shards it touches.
//
// # Persistence
//
// The table is the only state of the public proxy that must survive a
// restart. Save writes it as JSON atomically (temporary file, fsync,
// rename, directory fsync); Load reads it back with the same validation as
// Announce, skipping and reporting bad entries and dropping expired ones.
//
// # Bounds
//
// Options.MaxEntries (default 1,000,000) caps the table and
// Options.MaxPerOperator (default 100,000) caps each operator; Announce
// drops expired entries before it refuses with ErrFull. Load reads at most
// MaxFileBytes. The size of one Announce batch is the caller's to bound.
//
// This package knows nothing about sockets, TLS or JSON-RPC, and must not:
// it is called from the event loops, which must never wait on it, and from
// the JSON-RPC handlers, which decide what a caller may announce (the
// allowed list) and what the error codes become on the wire.
package matcher

// Package cluster is what several instances of one public proxy operator share through Redis:
// the announcement table, the list of live instances, and the standby tokens one instance mints
// for another.
//
// # Announcements
//
// The shared table lives in a Redis hash. Every change goes through one Lua script, so the rules
// that need every instance's view (a name held by another operator is refused with 409, the
// caps) are decided atomically in Redis whichever instance is asked; the rules that need no
// shared state (name syntax, the caller's allowed domains, the 7-day cap) are checked by the
// instance first (matcher.Check). A script that changes anything bumps a revision counter and
// publishes the change with its revision. Each instance mirrors the table into its own
// matcher.Table, which is what its event loops read: no client costs a Redis round trip. The
// follower applies published changes in revision order; a gap, a lost subscription or a
// restart makes it read the whole hash again (resync). A call that changed the table returns once
// the instance's own mirror holds the change, so the caller's next client is served at once.
//
// # When Redis is unreachable
//
// Lookups go on from the mirror. Announcements are refused with ErrUnavailable, said once in the
// log and in Stats, and the follower retries with a capped backoff; when Redis answers again it
// resyncs. If Redis lost its data (it came back empty, or with another epoch: a random id the
// first instance stores), the instances put back every live announcement their mirror holds
// before reading the table, through the same script, so nothing accepted before an outage is
// lost even by a Redis without persistence.
//
// # Instances and standby tokens
//
// Each instance records its internal endpoint (where private proxies dial) with a heartbeat;
// Instances lists the live ones. A private proxy keeps standby sockets at every instance: the
// instance it asks mints tokens on another's behalf and publishes only their SHA-256 hashes on
// that instance's channel (SendTokens); the other files them (Hooks.Tokens) and accepts the
// tokens when they are presented, with no Redis call then.
//
// This package must not touch client sockets or the engine: it calls the hooks it is given, and
// the public proxy decides what they do. Redis is trusted as the operator's own store: whoever
// can write to it can change the routing table.
package cluster

package engine

import "slices"

// Observer is told what becomes of the connections, for metrics: which announcement a client
// was routed to, whether it was relayed, and why a connection was refused. Its methods run on
// the event loops for every connection (Refused also on the goroutine that calls Cancel), so
// they must not block and should only add to counters; they must not call the Engine.
type Observer interface {
	// Routed: a client's hello named a host that domain's announcement serves (Announcement.Domain,
	// the pattern for a wildcard match). A name nobody announced is not routed: it is refused
	// with the reason "no_route".
	Routed(domain string)
	// Relayed: a routed client was handed to the relay with its private side.
	Relayed(domain string)
	// Refused: a connection was closed before it was relayed, for why. internal is true for the
	// internal listener, whose connections have no domain; a public connection's domain is its
	// announcement once routed, "" before (or for "no_route").
	Refused(domain string, why Refusal, internal bool)
}

// Refusal is why a connection was refused: its name is RefusalReasons()[r], the reason its log
// line gives.
type Refusal uint8

// String returns the reason as the log lines name it.
func (r Refusal) String() string {
	if int(r) < len(refusalReasons) {
		return refusalReasons[r]
	}
	return "other"
}

// RefusalReasons lists the reasons a connection may be refused for, indexed by Refusal. The list
// is fixed: a reason the engine does not know is counted as "other".
func RefusalReasons() []string { return slices.Clone(refusalReasons[:]) }

// refused counts a refusal of s for reason: the observer hears of it, and the result says
// whether it gets a log line of its own (refusalLog.allow). Callers check it before building the
// line's attributes.
func (e *Engine) refused(s *conn, reason string) bool {
	i := refusalIndex(reason)
	if e.obs != nil {
		e.obs.Refused(s.domain, Refusal(i), !s.public)
	}
	return e.refusals.allow(i)
}

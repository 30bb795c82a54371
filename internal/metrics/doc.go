// Package metrics is what the processes' Prometheus metrics share: the registry each
// long-running process serves at /metrics on its admin listener (with the Go and process
// collectors), the bounded set of domain labels with each domain's connection counters, the
// relay's bytes per domain counted while connections are open, and the histogram of EPS calls.
//
// It owns those collectors and the label rules: a domain gets a label of its own only when an
// announcement served it, at most MaxDomains of them for the life of the process; names nobody
// announced count under Unannounced, connections refused before a name was read under NoName,
// and announced names past the cap under Other. A call's method is a label only when the caller
// says it is known, its result one of a fixed few (Result).
//
// What the data path calls (Domains.Get and the Domain counters, Domains.PairDone) only adds to
// counters: no lock, no allocation and no I/O, except the first time a domain is seen, which
// takes a mutex for the copy of a map of at most MaxDomains entries. The relay's bytes are read
// at scrape time on the relay's loops (relay.Visit), so moving bytes costs nothing more. It must
// not touch sockets, the announcement tables or the relay's pairs beyond those reads, and it
// registers nothing in Prometheus's global default registry.
package metrics

// Package eps is the EPS signaling node: it carries JSON-RPC calls between operators over
// mutually authenticated TLS and delivers the calls addressed to its own operator to that
// operator's service (a proxy), adding a `_client` object that says who called.
//
// Typical usage (what `eps server run` does):
//
//	var s eps.Settings
//	config.Load("EPS_SETTINGS", "EPS_", &s)
//	n, err := eps.New(s, logger)
//	err = n.Start()
//	defer n.Shutdown(ctx)
//
// A node has three faces:
//   - the local API (Settings.Local): JSON-RPC 2.0 over HTTPS for its own operator's service. A
//     call's method is "<operator>.<method>" (operator names contain dots: split at the last
//     one). Calls for another operator go to that operator's node; calls for itself are delivered
//     locally. The client must present this operator's own certificate.
//   - the peer link (Settings.Peer): HTTP/2 over mutual TLS between nodes, on persistent
//     connections. The caller is the operator named by its verified certificate (and pinned by the
//     directory where it pins); the node checks the directory's permissions before delivering.
//   - delivery (Settings.Service): the node POSTs the call to its service's JSON-RPC endpoint over
//     HTTPS with its certificate, with params._client = {"name": caller, "entry": caller's
//     directory entry}. Any `_client` a caller sent is replaced: only the receiving node sets it.
//     A service run by several processes has several endpoints (service.endpoint and
//     service.endpoints): calls go round-robin to those believed up, a call that could not reach
//     one (a refused connect or handshake, never a timeout) goes on to the next within its
//     deadline, and a prober checks each every service.health_every (service.go).
//
// Reload (SIGHUP) applies at once, for the calls that start after it: the directory,
// call_timeout, max_inflight and the service endpoints (service.endpoint, service.endpoints,
// service.health_every, by replacing the node's service whole); calls in flight finish as they
// started. The TLS identity, the binds, local.path and admin keep their running values until a
// restart (reload.go).
//
// Every failure comes back as a JSON-RPC error with a code from internal/jsonrpc: 404 unknown
// operator, 403 not allowed, -32601 method not found, 502 unreachable, 504 timed out, 503 overloaded.
// The package knows nothing of proxies or TLS passthrough.
package eps

// Package epsclient is the proxies' link to their own EPS node.
//
// Typical usage:
//
//	c := epsclient.NewClient(s.EPS, identity, "public-proxy-1.ga")
//	pool := epsclient.NewPool(c, 4, 4096)
//	err := pool.Submit(epsclient.Job{Operator: "private-proxy-1.ga", Method: "incomingConnection",
//		Params: params, Done: func(raw json.RawMessage, err error) { ... }})
//
//	srv := epsclient.NewServer("public-proxy-1.ga", logger)
//	srv.Handle("announceConnections", epsclient.Typed(func(ctx context.Context, c *epsclient.Call, ps Params) (any, error) { ... }))
//	err = srv.Start(s.EPS.Listen, identity)
//
// It owns three things: Client, a keep-alive JSON-RPC client that calls "<operator>.<method>"
// through the node; Pool, a small bounded set of workers with a bounded queue, so that an event
// loop can hand a call off without ever blocking (a full queue is an error returned at once); and
// Server, the HTTPS JSON-RPC endpoint the node delivers calls to. The server accepts calls only
// over TLS from a client presenting this operator's own certificate (its node), and only then
// believes the `_client` object in the params, because only the node sets it.
//
// It knows nothing of sockets, tokens or announcements: those are the proxies' business.
package epsclient

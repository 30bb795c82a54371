// Package load is the benchmark's load generator: real TLS clients (crypto/tls, verifying the
// certificate for the SNI name, no session cache, so every connection does a full handshake)
// that open connections and send one HTTP/1.1 request each, bulk streams over TLS or raw TCP,
// and a holder that keeps thousands of idle connections open. It is built to be cheap so it does
// not steal the CPU it measures: one goroutine per concurrency slot, one reused tls.Config, and
// HTTP written and parsed by hand on the tls.Conn instead of net/http.
//
// Typical use:
//
//	cfg := &tls.Config{RootCAs: roots, ServerName: "test.internal-server.local"}
//	res, err := load.RunConns(ctx, load.ConnsConfig{
//		Addr: proxyAddr, TLS: cfg, Request: load.Request("test.internal-server.local", "/jsonrpc", true),
//		Concurrency: 25, Duration: 3 * time.Second,
//	})
//	fmt.Println(res.Rate(), res.Latency().P99)
//
// It dials only the addresses it is given; it owns the connections it opens and closes them
// all before returning (RunConns) or on Close/Stop (Hold, Bulk).
package load

// Package haproxy runs HAProxy as the benchmark's reference proxy: TLS passthrough routed by
// SNI (`mode tcp`, `req.ssl_sni`, with `tcp-request inspect-delay` and an accept rule on
// `req.ssl_hello_type 1`, so a ClientHello spread over several segments is waited for). It
// renders the configuration, checks it with `haproxy -c`, starts and stops the process, and can
// install the Debian package when it is missing and the harness runs as root.
//
// Typical use:
//
//	bin, err := haproxy.Ensure(ctx, os.Stderr) // finds haproxy, or apt-get installs it as root
//	p, err := haproxy.Start(ctx, bin, dir, "haproxy-1", haproxy.Config{
//		Bind:   "127.0.0.1:8443",
//		Routes: []haproxy.Route{{SNI: "test.internal-server.local", Addr: "127.0.0.1:8888"}},
//	})
//	defer p.Stop(5 * time.Second)
//
// It owns only the processes it starts and the files it writes into dir; it never touches a
// system-wide HAProxy service or its configuration.
package haproxy

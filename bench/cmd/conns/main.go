// Command conns sends new connections to a chain that is already running (make demo, say): each
// a TCP connect, a full TLS handshake, one request and the whole response, as the harness's
// connection scenario does, for a bounded count and time. It is for profiling sessions and
// syscall counts (strace -c, perf) against processes the harness does not own.
//
//	make demo &
//	go run ./bench/cmd/conns -n 20000 -c 25
//
// It prints the connections made, failed and per second, and latency percentiles.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"epsproxy/bench/load"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4433", "where to connect: the public proxy's TLS port, or a backend's")
	name := fs.String("name", "test.internal-server.local", "the SNI name, and the name the certificate is verified for")
	ca := fs.String("ca", "settings/dev/certs/root.crt", "the root certificate the server's chain is verified against")
	path := fs.String("path", "/jsonrpc", "the request's path")
	c := fs.Int("c", 25, "concurrent clients, one connection at a time each")
	n := fs.Int("n", 10000, "connections to make at most")
	d := fs.Duration("d", time.Minute, "stop starting connections after this")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pem, err := os.ReadFile(*ca)
	if err != nil {
		fmt.Fprintf(stderr, "conns: -ca: %v\n", err)
		return 1
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fmt.Fprintf(stderr, "conns: -ca %s: no PEM certificate in it\n", *ca)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := load.RunConns(ctx, load.ConnsConfig{
		Addr:        *addr,
		TLS:         &tls.Config{ServerName: *name, RootCAs: roots},
		Request:     load.Request(*name, *path, true),
		Concurrency: *c,
		Duration:    *d,
		MaxConns:    *n,
	})
	if err != nil {
		fmt.Fprintf(stderr, "conns: %v\n", err)
		return 1
	}
	l := res.Latency()
	fmt.Fprintf(stdout, "%d ok, %d failed in %v: %.0f conns/s; p50 %v p90 %v p99 %v\n",
		res.OK, res.Errors, res.Elapsed.Round(time.Millisecond), res.Rate(), l.P50, l.P90, l.P99)
	if res.FirstError != "" {
		fmt.Fprintf(stdout, "first failure: %s\n", res.FirstError)
	}
	if res.Errors > 0 {
		return 1
	}
	return 0
}

// Command internal-server is the demo's internal server: a TLS server (by default on port 8888,
// with settings/dev/certs/internal-server.{crt,key}, valid for *.internal-server.local) that sits
// behind the private proxy.
//
//	GET  /jsonrpc   {"message": "success"}
//	POST /jsonrpc   echoes the JSON body it received; a body that is not JSON gets 400 and a JSON error
//
// With -proxy-protocol required (or optional) it reads the PROXY protocol v2 header a private
// proxy sends for a name set to proxy_protocol: v2, and logs each request with the client's
// address from it (client=, proxy_header=true), or the connection's peer when there is none.
//
// Run it from the repository root so the default certificate paths resolve. Its behaviour is
// internal/demoserver's; this command only parses flags and must not hold any.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"epsproxy/internal/daemon"
	"epsproxy/internal/demoserver"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("internal-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8888", "listen address")
	cert := fs.String("cert", "settings/dev/certs/internal-server.crt", "certificate (chain) file")
	key := fs.String("key", "settings/dev/certs/internal-server.key", "private key file")
	pp := fs.String("proxy-protocol", "off", "PROXY protocol v2 header in front of each connection: off, required (a connection without one is closed) or optional; with either, each request is logged with its client's address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	mode, err := demoserver.ParseProxyProtocol(*pp)
	if err != nil {
		fmt.Fprintf(stderr, "internal-server: -proxy-protocol: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("server", "internal")
	srv, err := demoserver.New(*addr, *cert, *key, log)
	if err != nil {
		return daemon.Fail(stderr, "internal-server", err)
	}
	srv.SetProxyProtocol(mode)
	return daemon.Run(log, stderr, "internal-server", svc{srv}, 5*time.Second)
}

type svc struct{ s *demoserver.Server }

func (s svc) Start() error {
	if err := s.s.Start(); err != nil {
		return fmt.Errorf("%w (run it from the repository root after make, or pass -cert/-key)", err)
	}
	return nil
}
func (s svc) Stop(ctx context.Context) error { return s.s.Stop(ctx) }

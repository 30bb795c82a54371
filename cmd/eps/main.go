// Command eps runs an EPS signaling node:
//
//	EPS_SETTINGS=settings/dev/roles/public-proxy-eps-1 eps server run
//
// EPS_SETTINGS names one or more settings directories or files (':'-separated). Environment
// variables EPS_PEER_BIND, EPS_LOCAL_BIND, EPS_SERVICE_ENDPOINT and EPS_LOG_LEVEL override the
// settings of the same name. The node stops on SIGINT or SIGTERM. The node's behaviour is
// package eps's; this command only wires it up and must not hold any.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"epsproxy/eps"
	"epsproxy/internal/admin"
	"epsproxy/internal/config"
	"epsproxy/internal/daemon"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/metrics"
)

const usage = `usage: eps server run [--profile KIND] [--profile-dir DIR]
                                      run the EPS node described by $EPS_SETTINGS; with
                                      --profile (cpu, mem, block, mutex, goroutine) write a
                                      profile into DIR (default profiles) on shutdown
       eps call METHOD [PARAMS]       call <operator>.<method> through that node's local API
                                      with the node's own identity; PARAMS is a JSON object
       eps check                      load and validate $EPS_SETTINGS, the directory and the
                                      certificates, print one line and exit (0 when valid)
       eps version                    print the version`

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	switch {
	case len(args) >= 2 && args[0] == "server" && args[1] == "run":
		return serve(args[2:], stderr)
	case len(args) == 1 && args[0] == "check":
		return check(os.Stdout, stderr)
	case len(args) >= 2 && len(args) <= 3 && args[0] == "call":
		params := "{}"
		if len(args) == 3 {
			params = args[2]
		}
		return call(args[1], params, os.Stdout, stderr)
	}
	if status, ok := daemon.Help(args, os.Stdout, stderr, usage); ok {
		return status
	}
	fmt.Fprintln(stderr, usage)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	pf, ok := daemon.ParseProfileFlags("eps server run", args, stderr, usage)
	if !ok {
		return 2
	}
	var s eps.Settings
	if err := config.Load("EPS_SETTINGS", "EPS_", &s); err != nil {
		return daemon.Fail(stderr, "eps", err)
	}
	level, _ := config.ParseLevel(s.LogLevel, "log_level") // checked by Load
	lv := new(slog.LevelVar)
	lv.Set(level)
	log := config.Logger(stderr, lv)
	n, err := eps.New(s, log)
	if err != nil {
		return daemon.Fail(stderr, "eps", err)
	}
	reg := metrics.NewRegistry()
	if err := n.Metrics(reg); err != nil {
		return daemon.Fail(stderr, "eps", err)
	}
	stopProfile, err := pf.Start()
	if err != nil {
		return daemon.Fail(stderr, "eps", err)
	}
	defer stopProfile()
	adm, err := admin.Start(s.Admin, log)
	if err != nil {
		return daemon.Fail(stderr, "eps", config.Errorf("admin.bind", "%v", err))
	}
	defer adm.Stop(context.Background())
	adm.Register("eps", func() any { return n.Stats() })
	adm.Handle("/metrics", metrics.Handler(reg))
	return daemon.Run(log, stderr, "eps", nodeService{n, lv, log}, 10*time.Second)
}

type nodeService struct {
	n   *eps.Node
	lv  *slog.LevelVar
	log *slog.Logger
}

func (s nodeService) Start() error                   { return s.n.Start() }
func (s nodeService) Stop(ctx context.Context) error { return s.n.Shutdown(ctx) }

// Reload re-reads $EPS_SETTINGS and the directory (SIGHUP).
func (s nodeService) Reload() error {
	var set eps.Settings
	if err := config.Load("EPS_SETTINGS", "EPS_", &set); err != nil {
		return err
	}
	restart, err := s.n.Reload(set)
	if err != nil {
		return err
	}
	level, _ := config.ParseLevel(set.LogLevel, "log_level") // checked by Load
	s.lv.Set(level)
	if len(restart) > 0 {
		s.log.Warn("changed settings keep their running values until a restart", "keys", restart)
	}
	return nil
}

// call sends one call through the local API, presenting the node's own certificate, and prints
// the result as indented JSON.
func call(method, params string, stdout, stderr io.Writer) int {
	var s eps.Settings
	if err := config.Load("EPS_SETTINGS", "EPS_", &s); err != nil {
		return daemon.Fail(stderr, "eps", err)
	}
	if !json.Valid([]byte(params)) {
		return daemon.Fail(stderr, "eps call", fmt.Errorf("params %q are not JSON", params))
	}
	s = s.WithDefaults()
	id, err := s.TLS.Load()
	if err != nil {
		return daemon.Fail(stderr, "eps call", config.Join("tls", err))
	}
	host := s.Local.Bind
	if h, p, err := net.SplitHostPort(host); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
		host = net.JoinHostPort("127.0.0.1", p)
	}
	c := &jsonrpc.Client{URL: "https://" + host + s.Local.Path, HTTP: &http.Client{Transport: jsonrpc.NewTransport(id.ClientConfig(s.Name), nil)}}
	ctx, cancel := context.WithTimeout(context.Background(), s.CallTimeout.D()+time.Second)
	defer cancel()
	raw, err := c.CallRaw(ctx, method, json.RawMessage(params))
	if err != nil {
		return daemon.Fail(stderr, "eps call", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		out.Write(raw)
	}
	fmt.Fprintln(stdout, out.String())
	return 0
}

// check loads and validates $EPS_SETTINGS, the directory and the TLS identity as `server run`
// would, and exits: 0 with one line, or 1 with one line naming the file, the key and the problem.
// It opens no socket.
func check(stdout, stderr io.Writer) int {
	var s eps.Settings
	if err := config.Load("EPS_SETTINGS", "EPS_", &s); err != nil {
		return daemon.Fail(stderr, "eps", err)
	}
	if _, err := eps.New(s, slog.New(slog.DiscardHandler)); err != nil {
		return daemon.Fail(stderr, "eps", err)
	}
	fmt.Fprintf(stdout, "eps: %s: settings of %s and its directory are valid\n", os.Getenv("EPS_SETTINGS"), s.Name)
	return 0
}

// Command proxy runs one of the two proxies:
//
//	PROXY_SETTINGS=settings/dev/roles/public-proxy-1 proxy run public
//	PROXY_SETTINGS=settings/dev/roles/private-proxy-1 proxy run private
//
// PROXY_SETTINGS names one or more settings directories or files (':'-separated); the settings
// must hold the block of the role being run. Environment variables override bind addresses
// (PROXY_PUBLIC_TLS_BIND, PROXY_PUBLIC_INTERNAL_BIND, PROXY_PUBLIC_INTERNAL_ENDPOINT,
// PROXY_EPS_NODE, PROXY_EPS_LISTEN, PROXY_PRIVATE_INTERNAL_ENDPOINT, PROXY_DATA_DIR,
// PROXY_LOG_LEVEL). The proxy stops on SIGINT or SIGTERM: it stops accepting, lets relayed
// connections finish for the drain timeout, saves its announcements and exits.
//
// It owns the settings file type (settings.go) and wiring; the roles' behaviour is
// proxy/public's and proxy/private's, and must not move here.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"epsproxy/internal/admin"
	"epsproxy/internal/config"
	"epsproxy/internal/daemon"
	"epsproxy/internal/metrics"
	"epsproxy/proxy/private"
	"epsproxy/proxy/public"
)

const usage = `usage: proxy run public|private [--profile KIND] [--profile-dir DIR]
                            run the proxy described by $PROXY_SETTINGS; with --profile (cpu,
                            mem, block, mutex, goroutine) write a profile into DIR (default
                            profiles) on shutdown
       proxy check          load and validate $PROXY_SETTINGS (and the certificates they name),
                            print one line and exit: 0 when valid, 1 naming file, key and problem
       proxy version        print the version`

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	switch {
	case len(args) >= 2 && args[0] == "run" && (args[1] == "public" || args[1] == "private"):
		return serve(args[1], args[2:], stderr)
	case len(args) == 1 && args[0] == "check":
		return check(os.Stdout, stderr)
	}
	if status, ok := daemon.Help(args, os.Stdout, stderr, usage); ok {
		return status
	}
	fmt.Fprintln(stderr, usage)
	return 2
}

func serve(which string, args []string, stderr io.Writer) int {
	pf, ok := daemon.ParseProfileFlags("proxy run", args, stderr, usage)
	if !ok {
		return 2
	}
	var s settings
	if err := config.Load("PROXY_SETTINGS", "PROXY_", &s); err != nil {
		return daemon.Fail(stderr, "proxy", err)
	}
	level, _ := config.ParseLevel(s.LogLevel, "log_level") // checked by Load
	lv := new(slog.LevelVar)
	lv.Set(level)
	log := config.Logger(stderr, lv).With("operator", s.Name)
	base, err := s.base(log)
	if err != nil {
		return daemon.Fail(stderr, "proxy", err)
	}
	adm, err := admin.Start(s.Admin, log)
	if err != nil {
		return daemon.Fail(stderr, "proxy", config.Errorf("admin.bind", "%v", err))
	}
	defer adm.Stop(context.Background())
	reg := metrics.NewRegistry()
	var (
		svc    daemon.Service
		drain  func() time.Duration
		procs  func() // sizes GOMAXPROCS once the loops are sized
		gov    *daemon.Governor
		reload func(settings) ([]string, error)
	)
	switch which {
	case "public":
		if s.Public == nil {
			return daemon.Fail(stderr, "proxy", fmt.Errorf("%s: no `public` block: these are not a public proxy's settings", os.Getenv("PROXY_SETTINGS")))
		}
		p, err := public.New(base, *s.Public)
		if err != nil {
			return daemon.Fail(stderr, "proxy", config.Join("public", err))
		}
		svc, drain = p, p.DrainTimeout
		reload = func(n settings) ([]string, error) { return p.Reload(*n.Public) }
		// gnet's loops block in epoll_wait holding a P: as many Ps as loops while the proxy is
		// quiet, a spare P per loop besides the CPUs once it is busy (daemon.Governor).
		// At rest the governor waits for the next accepted connection (Governor.Wake).
		procs = func() {
			gov = daemon.GovernProcs(p.Loops(), runtime.GOMAXPROCS(0)+p.Loops())
			if gov != nil {
				p.Engine().OnAccept(gov.Wake)
				adm.Register("governor", func() any { return gov.State() })
			}
		}
		adm.Register("public", func() any { return p.Stats() })
		if err := p.Metrics(reg); err != nil {
			return daemon.Fail(stderr, "proxy", err)
		}
	case "private":
		if s.Private == nil {
			return daemon.Fail(stderr, "proxy", fmt.Errorf("%s: no `private` block: these are not a private proxy's settings", os.Getenv("PROXY_SETTINGS")))
		}
		p, err := private.New(base, *s.Private)
		if err != nil {
			return daemon.Fail(stderr, "proxy", config.Join("private", err))
		}
		svc, drain = p, p.DrainTimeout
		reload = func(n settings) ([]string, error) { return p.Reload(*n.Private) }
		// Its Go code is the relay's loops, unless it terminates TLS itself.
		procs = func() {
			if s.Private.TerminateTLS == nil {
				daemon.SetProcs(p.Relay().Loops())
			}
		}
		adm.Register("private", func() any { return p.Stats() })
		if err := p.Metrics(reg); err != nil {
			return daemon.Fail(stderr, "proxy", err)
		}
	}
	adm.Handle("/metrics", metrics.Handler(reg))
	procs()
	defer gov.Stop() // nil unless a public proxy's governor runs
	stopProfile, err := pf.Start()
	if err != nil {
		return daemon.Fail(stderr, "proxy", err)
	}
	defer stopProfile()
	return daemon.Run(log, stderr, "proxy", &reloadable{Service: svc, which: which, start: s, role: reload, level: lv, log: log, drain: drain}, drain()+stopMargin)
}

// check loads and validates $PROXY_SETTINGS as `run` would, loads the TLS identity (and the
// terminate_tls certificate), and exits: 0 with one line saying what was checked, or 1 with one
// line naming the file, the key and the problem. It opens no socket.
func check(stdout, stderr io.Writer) int {
	var s settings
	if err := config.Load("PROXY_SETTINGS", "PROXY_", &s); err != nil {
		return daemon.Fail(stderr, "proxy", err)
	}
	if _, err := s.base(slog.New(slog.DiscardHandler)); err != nil {
		return daemon.Fail(stderr, "proxy", err)
	}
	roles := []string{}
	if s.Public != nil {
		roles = append(roles, "public")
	}
	if s.Private != nil {
		roles = append(roles, "private")
		if t := s.Private.TerminateTLS; t != nil {
			if _, err := tls.LoadX509KeyPair(string(t.CertFile), string(t.KeyFile)); err != nil {
				return daemon.Fail(stderr, "proxy", config.Errorf("private.terminate_tls.cert_file", "%v", err))
			}
		}
	}
	fmt.Fprintf(stdout, "proxy: %s: settings of %s (%s) are valid\n", os.Getenv("PROXY_SETTINGS"), s.Name, strings.Join(roles, ", "))
	return 0
}

// Package daemon is the life cycle every long-running command shares: load settings, build the
// logger, start, wait for SIGINT or SIGTERM, stop within a grace period, and turn every failure
// into one line on stderr and a non-zero exit status, plus the GOMAXPROCS sizing and the profile
// flags every command takes. It must not hold any command's behaviour or settings.
package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"epsproxy/internal/config"
)

// Service is what a command runs: Start returns once serving; Stop ends it within ctx.
type Service interface {
	Start() error
	Stop(ctx context.Context) error
}

// Failing is a Service that can stop serving on its own: Failed delivers why.
type Failing interface {
	Failed() <-chan error
}

// Reloader is a Service that re-reads its settings on SIGHUP. Reload returns an error (one
// line naming the file, the key and the problem) when the new settings do not load; the running
// configuration then stays.
type Reloader interface {
	Reload() error
}

// Graceful is a Service whose grace period a reload may change: Run asks it when it stops,
// instead of using the grace it was given.
type Graceful interface {
	Grace() time.Duration
}

// Run starts svc, waits for a signal (or, for a Failing service, its failure) and stops it with
// the given grace period (a Graceful service's own, as it stands then). It returns the process
// exit status: non-zero after a failure, which is also one line on stderr.
func Run(log *slog.Logger, stderr io.Writer, what string, svc Service, grace time.Duration) int {
	if err := svc.Start(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", what, err)
		return 1
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	// SIGHUP would end the process by default: it reloads, or is ignored with a line.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var failed <-chan error
	if f, ok := svc.(Failing); ok {
		failed = f.Failed()
	}
	stopGrace := func() time.Duration {
		if g, ok := svc.(Graceful); ok {
			return g.Grace()
		}
		return grace
	}
wait:
	for {
		select {
		case s := <-sig:
			grace = stopGrace()
			log.Info("stopping", "signal", s.String(), "grace", grace)
			break wait
		case <-hup:
			reload(log, svc)
		case err := <-failed:
			fmt.Fprintf(stderr, "%s: %v\n", what, err)
			ctx, cancel := context.WithTimeout(context.Background(), stopGrace())
			defer cancel()
			_ = svc.Stop(ctx)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	go func() {
		// A second signal stops at once.
		<-sig
		cancel()
	}()
	if err := svc.Stop(ctx); err != nil {
		log.Warn("stopped with an error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// reload runs svc's Reload and logs the outcome in one line.
func reload(log *slog.Logger, svc Service) {
	r, ok := svc.(Reloader)
	if !ok {
		log.Warn("SIGHUP ignored: this process does not reload its settings")
		return
	}
	if err := r.Reload(); err != nil {
		log.Error("reload refused; the running configuration stays", "err", err.Error())
		return
	}
	log.Info("reloaded")
}

// Fail prints one line for a start-up error and returns the exit status for it.
func Fail(stderr io.Writer, what string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", what, err)
	return 1
}

// Help answers the arguments every command takes besides its own: `version` prints the version
// on stdout, `help` (-h, --help) the usage on stderr. handled is false for anything else.
func Help(args []string, stdout, stderr io.Writer, usage string) (status int, handled bool) {
	if len(args) != 1 {
		return 0, false
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, config.Version())
		return 0, true
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, usage)
		return 0, true
	}
	return 0, false
}

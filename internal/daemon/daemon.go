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

// Run starts svc, waits for a signal (or, for a Failing service, its failure) and stops it with
// the given grace period. It returns the process exit status: non-zero after a failure, which
// is also one line on stderr.
func Run(log *slog.Logger, stderr io.Writer, what string, svc Service, grace time.Duration) int {
	if err := svc.Start(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", what, err)
		return 1
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var failed <-chan error
	if f, ok := svc.(Failing); ok {
		failed = f.Failed()
	}
	select {
	case s := <-sig:
		log.Info("stopping", "signal", s.String(), "grace", grace)
	case err := <-failed:
		fmt.Fprintf(stderr, "%s: %v\n", what, err)
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		_ = svc.Stop(ctx)
		return 1
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

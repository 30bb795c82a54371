package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// failing is a service that stops serving on its own after Start.
type failing struct {
	failed  chan error
	stopped bool
}

func (f *failing) Start() error                   { f.failed <- errors.New("the listeners stopped"); return nil }
func (f *failing) Stop(ctx context.Context) error { f.stopped = true; return nil }
func (f *failing) Failed() <-chan error           { return f.failed }

// A service that fails while it serves ends the process with a non-zero status and one line
// saying why, and is stopped on the way out: it never runs on with nothing served.
func TestRunEndsWhenTheServiceFails(t *testing.T) {
	svc := &failing{failed: make(chan error, 1)}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(slog.New(slog.NewTextHandler(io.Discard, nil)), &stderr, "proxy", svc, time.Second)
	}()
	select {
	case code := <-done:
		if code == 0 {
			t.Errorf("exit status 0 after a failure")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going after the service failed")
	}
	if got := strings.TrimSpace(stderr.String()); got != "proxy: the listeners stopped" {
		t.Errorf("stderr %q", got)
	}
	if !svc.stopped {
		t.Errorf("the failed service was not stopped")
	}
}

// graceful fails at once, like failing, and says how long it needs to stop; it records the time
// Stop was given.
type graceful struct {
	failing
	grace time.Duration
	given time.Duration
}

func (g *graceful) Grace() time.Duration { return g.grace }
func (g *graceful) Stop(ctx context.Context) error {
	d, _ := ctx.Deadline()
	g.given = time.Until(d)
	return nil
}

// A Graceful service is stopped within the grace it states when it stops (a reload may have
// lengthened its drain), not the one Run was started with.
func TestRunStopsAGracefulServiceWithinItsOwnGrace(t *testing.T) {
	svc := &graceful{failing: failing{failed: make(chan error, 1)}, grace: time.Hour}
	Run(slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard, "proxy", svc, time.Second)
	if svc.given < 59*time.Minute {
		t.Errorf("Stop was given %v, want the service's own hour", svc.given)
	}
}

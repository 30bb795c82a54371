package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/engine/relay"
	"epsproxy/internal/testnet"
	"epsproxy/matcher"
)

// New refuses what it cannot run with; Run reports a port it cannot take without leaving anything
// open; Stop ends Run whenever it is called.

// parts are the collaborators New needs, built fresh for one test.
type parts struct {
	routes engine.Routes
	notify engine.Notifier
	relay  *relay.Relay
}

func newParts(t testing.TB) parts {
	t.Helper()
	rl, err := relay.New(relay.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.Close() })
	return parts{routes: matcher.New(matcher.Options{}), notify: func(engine.Notice) error { return nil }, relay: rl}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	p := newParts(t)
	pub, internal := testnet.FreeAddr(t), testnet.FreeAddr(t)
	type args struct {
		cfg    engine.Config
		routes engine.Routes
		notify engine.Notifier
		relay  *relay.Relay
		log    *slog.Logger
	}
	cases := []struct {
		name  string
		spoil func(*args)
	}{
		{"no public address", func(a *args) { a.cfg.PublicAddr = "" }},
		{"no internal address", func(a *args) { a.cfg.InternalAddr = "" }},
		{"port 0", func(a *args) { a.cfg.PublicAddr = "127.0.0.1:0" }},
		{"no port", func(a *args) { a.cfg.InternalAddr = "127.0.0.1" }},
		{"no routes", func(a *args) { a.routes = nil }},
		{"no notifier", func(a *args) { a.notify = nil }},
		{"no relay", func(a *args) { a.relay = nil }},
		{"no logger", func(a *args) { a.log = nil }},
	}
	for _, tc := range cases {
		a := args{engine.Config{PublicAddr: pub, InternalAddr: internal}, p.routes, p.notify, p.relay, logger()}
		tc.spoil(&a)
		if e, err := engine.New(a.cfg, a.routes, a.notify, a.relay, a.log); err == nil || e != nil {
			t.Errorf("%s: New = %v, %v; want nil and an error", tc.name, e, err)
		}
	}
	// The same arguments unbroken are fine, so each case failed for its own reason.
	if _, err := engine.New(engine.Config{PublicAddr: pub, InternalAddr: internal}, p.routes, p.notify, p.relay, logger()); err != nil {
		t.Errorf("New with every argument valid: %v", err)
	}
}

// Not parallel: it counts descriptors.
func TestRunFailsOnATakenPortAndLeavesNothingOpen(t *testing.T) {
	for _, which := range []string{"public", "internal"} {
		t.Run(which, func(t *testing.T) {
			p := newParts(t)
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			cfg := engine.Config{PublicAddr: testnet.FreeAddr(t), InternalAddr: testnet.FreeAddr(t)}
			if which == "public" {
				cfg.PublicAddr = taken.Addr().String()
			} else {
				cfg.InternalAddr = taken.Addr().String()
			}
			e, err := engine.New(cfg, p.routes, p.notify, p.relay, logger())
			if err != nil {
				t.Fatal(err)
			}
			baseFD, baseG := openFDs(t), runtime.NumGoroutine()
			errc := make(chan error, 1)
			go func() { errc <- e.Run() }()
			select {
			case err := <-errc:
				if err == nil {
					t.Fatal("Run returned nil with its port taken")
				}
				t.Logf("Run: %v", err)
			case <-e.Ready():
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				_ = e.Stop(ctx)
				t.Fatal("the engine became ready with its port taken")
			case <-time.After(patience):
				t.Fatal("Run neither failed nor became ready")
			}
			select {
			case <-e.Done():
			case <-time.After(patience):
				t.Fatal("Done not closed after Run returned")
			}
			// Run has returned: whatever it closes is closed; allow the runtime a moment.
			var fds, g int
			deadline := time.Now().Add(2 * time.Second)
			for {
				fds, g = openFDs(t), runtime.NumGoroutine()
				if (fds <= baseFD && g <= baseG) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if fds > baseFD || g > baseG {
				t.Errorf("after the failed Run: %d descriptors (%d before), %d goroutines (%d before)", fds, baseFD, g, baseG)
				if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
					for _, e := range ents {
						if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
							t.Logf("fd %s -> %s", e.Name(), l)
						}
					}
				}
			}
		})
	}
}

// Stop may come at any moment, also while Run is still starting: Run must end either way.
func TestStopDuringStartEndsRun(t *testing.T) {
	t.Parallel()
	for i := range 5 {
		p := newParts(t)
		cfg := engine.Config{PublicAddr: testnet.FreeAddr(t), InternalAddr: testnet.FreeAddr(t)}
		e, err := engine.New(cfg, p.routes, p.notify, p.relay, logger())
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = e.Run() }()
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		stopErr := e.Stop(ctx)
		cancel()
		select {
		case <-e.Done():
		case <-time.After(3 * time.Second):
			// Leave no engine running behind the failed test.
			<-e.Ready()
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			_ = e.Stop(ctx)
			cancel()
			t.Fatalf("round %d: Stop during start returned %v, and Run was still serving 3 s later", i+1, stopErr)
		}
	}
}

// A second Stop (a signal handler and a deferred call, say) returns at once; it may say the
// engine is already stopped.
func TestStopTwice(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		err := r.eng.Stop(ctx)
		cancel()
		switch {
		case i == 0 && err != nil:
			t.Errorf("Stop: %v", err)
		case errors.Is(err, context.DeadlineExceeded):
			t.Errorf("second Stop waited for its deadline")
		case err != nil:
			t.Logf("second Stop: %v", err)
		}
	}
	select {
	case <-r.eng.Done():
	case <-time.After(patience):
		t.Fatal("Run did not return")
	}
}

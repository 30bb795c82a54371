package proxy

import (
	"context"
	"time"
)

// Every runs f now and then every interval until stop is closed. f's context ends when stop
// closes, so a call it makes is cut short by a shutdown.
func Every(stop <-chan struct{}, every time.Duration, f func(ctx context.Context)) {
	ctx, cancel := StopContext(stop)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// StopContext is a context that ends when stop is closed (or cancel is called).
func StopContext(stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Limits of Hold.
const (
	// MaxHeld caps the connections one Hold keeps open.
	MaxHeld = 20_000
	// MaxRate caps HoldConfig.Rate (a ticker cannot tick faster than once a microsecond).
	MaxRate = 1_000_000
)

// HoldConfig describes idle connections to open and keep.
type HoldConfig struct {
	Addr        string
	TLS         *tls.Config // as for RunConns
	Request     []byte      // a keep-alive request, e.g. Request(host, path, false)
	Conns       int         // how many to hold
	Concurrency int         // goroutines opening them
	// Rate caps new connections per second (0: no cap), to stay under a proxy's per-source
	// rate limit.
	Rate    int
	Timeout time.Duration // per connection setup (0: DefaultTimeout)
}

// Held is a set of open, idle connections.
type Held struct {
	mu     sync.Mutex
	conns  []net.Conn
	Failed int    // connections that could not be set up
	First  string // the first failure
}

// Hold opens cfg.Conns connections (handshake, one request and its 200 response on each) and
// keeps them open without traffic. It stops early when ctx ends; it returns an error only for a
// bad config. Close the result to release the connections. Calls may overlap.
func Hold(ctx context.Context, cfg HoldConfig) (*Held, error) {
	if cfg.TLS == nil || cfg.TLS.ServerName == "" || len(cfg.Request) == 0 {
		return nil, errors.New("Hold: need TLS with ServerName and Request")
	}
	if cfg.Conns < 1 || cfg.Conns > MaxHeld {
		return nil, fmt.Errorf("Hold: %d connections, want 1 to %d", cfg.Conns, MaxHeld)
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > MaxConcurrency {
		return nil, fmt.Errorf("Hold: concurrency %d, want 1 to %d", cfg.Concurrency, MaxConcurrency)
	}
	if cfg.Rate < 0 || cfg.Rate > MaxRate {
		return nil, fmt.Errorf("Hold: rate %d per second, want 0 (no cap) to %d", cfg.Rate, MaxRate)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	h := &Held{conns: make([]net.Conn, 0, cfg.Conns)}
	jobs := make(chan struct{})
	go func() {
		defer close(jobs)
		var tick <-chan time.Time
		if cfg.Rate > 0 {
			t := time.NewTicker(time.Second / time.Duration(cfg.Rate))
			defer t.Stop()
			tick = t.C
		}
		for range cfg.Conns {
			if tick != nil {
				select {
				case <-tick:
				case <-ctx.Done():
					return
				}
			}
			select {
			case jobs <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	d := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: -1}
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, BufSize)
			for range jobs {
				c, err := openIdle(ctx, d, cfg, buf)
				h.mu.Lock()
				if err != nil {
					h.Failed++
					if h.First == "" {
						h.First = err.Error()
					}
				} else {
					h.conns = append(h.conns, c)
				}
				h.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return h, nil
}

func openIdle(ctx context.Context, d *net.Dialer, cfg HoldConfig, buf []byte) (net.Conn, error) {
	raw, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	_ = raw.SetDeadline(time.Now().Add(cfg.Timeout))
	c := tls.Client(raw, cfg.TLS)
	status, err := func() (int, error) {
		if err := c.HandshakeContext(ctx); err != nil {
			return 0, fmt.Errorf("handshake: %w", err)
		}
		if _, err := c.Write(cfg.Request); err != nil {
			return 0, err
		}
		return ReadResponse(c, buf)
	}()
	if err == nil && status != 200 {
		err = fmt.Errorf("HTTP %d", status)
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return c, nil
}

// Len is the number of connections held. Safe from any goroutine.
func (h *Held) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Close closes every held connection (without close_notify; the peers see EOF). Safe from any
// goroutine; later calls do nothing.
func (h *Held) Close() {
	h.mu.Lock()
	conns := h.conns
	h.conns = nil
	h.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*tls.Conn); ok {
			tc.NetConn().Close()
		} else {
			c.Close()
		}
	}
}

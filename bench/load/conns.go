package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Limits and defaults of RunConns.
const (
	// MaxConcurrency caps client goroutines in one run.
	MaxConcurrency = 1000
	// DefaultMaxConns caps connections in one run when ConnsConfig.MaxConns is 0.
	DefaultMaxConns = 200_000
	// DefaultTimeout bounds one connection (connect to response) when ConnsConfig.Timeout is 0.
	DefaultTimeout = 10 * time.Second
	// errorBackoff keeps a failing target from turning a worker into a busy loop.
	errorBackoff = 10 * time.Millisecond
)

// ConnsConfig describes one run of new connections.
type ConnsConfig struct {
	Addr string // where to connect (host:port)
	// TLS is shared by every connection: ServerName set to the name to ask for (it is also the
	// name the certificate is verified against), RootCAs to trust, ClientSessionCache nil.
	TLS         *tls.Config
	Request     []byte        // written once per connection, e.g. Request(host, path, true)
	Concurrency int           // client goroutines, each with one connection at a time
	Duration    time.Duration // no new connection starts after this
	MaxConns    int           // cap on connections started (0: DefaultMaxConns)
	Timeout     time.Duration // per connection (0: DefaultTimeout)
}

// ConnsResult is what one run measured.
type ConnsResult struct {
	OK         int             // connections that got a 200 response
	Errors     int             // connections that failed or got another status
	FirstError string          // the first failure, for the report
	Elapsed    time.Duration   // from start to the last connection's end
	Latencies  []time.Duration // connect-to-response of each OK connection, sorted by Latency()
}

// Rate is OK connections per second. It only reads r.
func (r *ConnsResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Latency summarises the latencies. It sorts r.Latencies in place: not concurrently with other
// use of r.
func (r *ConnsResult) Latency() Latency { return Summarize(r.Latencies) }

// RunConns opens connections with cfg.Concurrency goroutines until cfg.Duration has passed, ctx
// ends or cfg.MaxConns have started. Each connection: TCP connect, full TLS handshake, one
// request, the whole response, close. It returns an error only for a bad config; failed
// connections are counted in the result. Runs are independent: calls may overlap.
func RunConns(ctx context.Context, cfg ConnsConfig) (ConnsResult, error) {
	if cfg.TLS == nil || cfg.TLS.ServerName == "" || len(cfg.Request) == 0 || cfg.Addr == "" {
		return ConnsResult{}, errors.New("RunConns: need Addr, TLS with ServerName and Request")
	}
	if cfg.TLS.ClientSessionCache != nil {
		return ConnsResult{}, errors.New("RunConns: a session cache would skip full handshakes")
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > MaxConcurrency {
		return ConnsResult{}, fmt.Errorf("RunConns: concurrency %d, want 1 to %d", cfg.Concurrency, MaxConcurrency)
	}
	if cfg.Duration <= 0 {
		return ConnsResult{}, errors.New("RunConns: need a positive Duration")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	var (
		started atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		res     ConnsResult
	)
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: -1}
	begin := time.Now()
	deadline := begin.Add(cfg.Duration)
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, BufSize)
			lat := make([]time.Duration, 0, 1024)
			var ok, bad int
			var first error
			for ctx.Err() == nil && time.Now().Before(deadline) && started.Add(1) <= int64(cfg.MaxConns) {
				d, err := roundTrip(ctx, dialer, cfg, buf)
				if err != nil {
					bad++
					if first == nil {
						first = err
					}
					time.Sleep(errorBackoff)
					continue
				}
				ok++
				lat = append(lat, d)
			}
			mu.Lock()
			res.OK += ok
			res.Errors += bad
			res.Latencies = append(res.Latencies, lat...)
			if first != nil && res.FirstError == "" {
				res.FirstError = first.Error()
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(begin)
	return res, nil
}

// roundTrip does one connection and returns its connect-to-response latency.
func roundTrip(ctx context.Context, d *net.Dialer, cfg ConnsConfig, buf []byte) (time.Duration, error) {
	start := time.Now()
	raw, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return 0, err
	}
	// Closing the socket without a close_notify: the server already closes first on
	// "Connection: close", and an alert into a closed peer would only cost a reset.
	defer raw.Close()
	_ = raw.SetDeadline(start.Add(cfg.Timeout))
	c := tls.Client(raw, cfg.TLS)
	if err := c.HandshakeContext(ctx); err != nil {
		return 0, fmt.Errorf("handshake: %w", err)
	}
	if _, err := c.Write(cfg.Request); err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	status, err := ReadResponse(c, buf)
	if err != nil {
		return 0, err
	}
	if status != 200 {
		return 0, fmt.Errorf("HTTP %d", status)
	}
	return time.Since(start), nil
}

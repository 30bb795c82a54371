package eps

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"epsproxy/internal/jsonrpc"
)

// probeTimeout bounds one health probe (a connect and a TLS handshake), as the service
// transport's dialer bounds a connect.
const probeTimeout = 3 * time.Second

// service is this operator's service as its node reaches it: one or more endpoints, one
// jsonrpc client each. Calls go round-robin to the endpoints believed up. A call that cannot
// have reached its endpoint (jsonrpc.Unsent) marks it down and goes to the next one at once;
// with several endpoints a prober marks them up and down between calls.
//
// A service owns its endpoints' HTTP transports and its prober; close stops both. Its endpoint
// list never changes: Reload builds a new service and puts it in the old one's place, and the
// calls that hold the old one finish on it.
type service struct {
	all    []*endpoint
	up     atomic.Pointer[[]*endpoint] // the endpoints believed up, in settings order
	mu     sync.Mutex                  // serialises rebuilding up
	next   atomic.Uint64               // round-robin position
	every  time.Duration
	log    *slog.Logger
	closed atomic.Bool // set by close: a call that ends after it closes the idle connections again

	stop    context.CancelFunc // ends the prober; nil until start
	stopped sync.WaitGroup
}

// endpoint is one service endpoint.
type endpoint struct {
	i    int    // index in service.all
	url  string // as configured
	addr string // host:port the prober dials
	rpc  *jsonrpc.Client
	tls  *tls.Config
	isUp atomic.Bool
	n    *endpointCounts
}

// endpointCounts are an endpoint's counters. A service Reload builds shares them with the
// endpoint of the same URL in the service it replaces, so an endpoint that stays keeps counting
// from where it was (calls still in flight on the old service included).
type endpointCounts struct {
	delivered atomic.Int64
	failed    atomic.Int64
}

// newService builds the endpoints of urls (checked by Settings.Validate), dialled with tc. An
// endpoint whose URL prev (the service it replaces; nil at start) has too takes over that one's
// counters and up or down state; any other starts believed up with zero counts.
func newService(urls []string, tc *tls.Config, every time.Duration, prev *service, log *slog.Logger) *service {
	s := &service{every: every, log: log}
	var before map[string]*endpoint
	if prev != nil {
		before = make(map[string]*endpoint, len(prev.all))
		for _, e := range prev.all {
			before[e.url] = e
		}
	}
	ups := make([]*endpoint, 0, len(urls))
	for i, raw := range urls {
		u, _ := url.Parse(raw)
		e := &endpoint{
			i:    i,
			url:  raw,
			addr: net.JoinHostPort(u.Hostname(), cmp.Or(u.Port(), "443")),
			// Each its own copy of tc: a transport sets its config's NextProtos on first use.
			rpc: &jsonrpc.Client{URL: raw, HTTP: &http.Client{Transport: jsonrpc.NewTransport(tc.Clone(), nil)}},
			tls: tc.Clone(),
			n:   new(endpointCounts),
		}
		e.isUp.Store(true)
		if old := before[raw]; old != nil {
			e.n = old.n
			e.isUp.Store(old.isUp.Load())
		}
		if e.isUp.Load() {
			ups = append(ups, e)
		}
		s.all = append(s.all, e)
	}
	s.up.Store(&ups)
	return s
}

// urls are the service's endpoint URLs, in settings order.
func (s *service) urls() []string {
	out := make([]string, len(s.all))
	for i, e := range s.all {
		out[i] = e.url
	}
	return out
}

// post delivers one encoded call. It tries the endpoints believed up, round-robin from the next
// one in turn; an endpoint the call could not reach is marked down and the next is tried at once,
// within ctx. When none is up, or none of them could be reached, it tries every other endpoint
// once (its state may be stale) before giving up with the last failure.
func (s *service) post(ctx context.Context, body []byte) (json.RawMessage, error) {
	var (
		tried uint64 // by endpoint index; Validate caps the endpoints at 64
		last  error
	)
	ups := *s.up.Load()
	if n := uint64(len(ups)); n > 0 {
		start := s.next.Add(1) - 1
		for k := range n {
			e := ups[(start+k)%n]
			tried |= 1 << e.i
			raw, err := s.try(ctx, e, body)
			if err == nil || !jsonrpc.Unsent(err) {
				return raw, err
			}
			last = err
		}
	}
	for _, e := range s.all {
		if tried&(1<<e.i) != 0 {
			continue
		}
		raw, err := s.try(ctx, e, body)
		if err == nil || !jsonrpc.Unsent(err) {
			return raw, err
		}
		last = err
	}
	if len(s.all) > 1 {
		e := jsonrpc.AsError(last)
		return nil, jsonrpc.Errorf(e.Code, "none of its %d endpoints could be reached (last: %s)", len(s.all), e.Message)
	}
	return nil, last
}

// try posts body to e and keeps its counters and state: an answer marks it up, a call that
// could not reach it marks it down.
func (s *service) try(ctx context.Context, e *endpoint, body []byte) (json.RawMessage, error) {
	raw, err := e.rpc.Post(ctx, body)
	if s.closed.Load() {
		e.rpc.HTTP.CloseIdleConnections() // a replaced or stopped service keeps no connection
	}
	switch {
	case err == nil:
	case jsonrpc.Unsent(err):
		e.n.failed.Add(1)
		s.set(e, false, "call", err)
		return nil, err
	default:
		if code := jsonrpc.AsError(err).Code; code == jsonrpc.CodeUnreachable || code == jsonrpc.CodeTimeout {
			e.n.failed.Add(1) // it may have run the call: no retry, and no verdict on its health
			return nil, err
		}
	}
	e.n.delivered.Add(1)
	s.set(e, true, "call", nil)
	return raw, err
}

// set records e as up or down; a change rebuilds the up list and is logged once.
func (s *service) set(e *endpoint, up bool, by string, err error) {
	if e.isUp.Load() == up || !e.isUp.CompareAndSwap(!up, up) {
		return
	}
	s.mu.Lock()
	ups := make([]*endpoint, 0, len(s.all))
	for _, x := range s.all {
		if x.isUp.Load() {
			ups = append(ups, x)
		}
	}
	s.up.Store(&ups)
	s.mu.Unlock()
	if up {
		s.log.Info("service endpoint up", "endpoint", e.url, "by", by, "up", len(ups), "of", len(s.all))
	} else {
		s.log.Warn("service endpoint down", "endpoint", e.url, "by", by, "err", err, "up", len(ups), "of", len(s.all))
	}
}

// start runs the prober when there are several endpoints: one goroutine per endpoint probes it
// at once, then every s.every after the previous probe ended. With one endpoint there is nowhere
// else to send a call, so nothing runs.
func (s *service) start() {
	if len(s.all) < 2 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	for _, e := range s.all {
		s.stopped.Add(1)
		go s.watch(ctx, e)
	}
}

func (s *service) watch(ctx context.Context, e *endpoint) {
	defer s.stopped.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := e.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		s.set(e, err == nil, "probe", err)
		t.Reset(s.every)
	}
}

// probe connects to e and completes a TLS handshake with the node's identity, verifying the
// service's certificate as a call would, then hangs up.
func (e *endpoint) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	d := tls.Dialer{Config: e.tls}
	c, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// close stops the prober and waits for it, and closes the idle connections. Calls in flight
// finish; one that ends after close closes its endpoint's idle connections, its own included.
// Call it once, after start if at all.
func (s *service) close() {
	s.closed.Store(true)
	if s.stop != nil {
		s.stop()
		s.stopped.Wait()
	}
	for _, e := range s.all {
		e.rpc.HTTP.CloseIdleConnections()
	}
}

// EndpointStats is one service endpoint in the node's stats. Delivered counts the calls it
// answered (with a result or an error of its own); Failed the attempts that ended unreachable or
// timed out (codes 502 and 504).
type EndpointStats struct {
	URL               string
	Up                bool
	Delivered, Failed int64
}

func (s *service) stats() []EndpointStats {
	out := make([]EndpointStats, len(s.all))
	for i, e := range s.all {
		out[i] = EndpointStats{URL: e.url, Up: e.isUp.Load(), Delivered: e.n.delivered.Load(), Failed: e.n.failed.Load()}
	}
	return out
}

package public

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"epsproxy/engine"
	"epsproxy/engine/relay"
	"epsproxy/epsclient"
	"epsproxy/internal/metrics"
	"epsproxy/matcher"
	"epsproxy/proxy"
	"epsproxy/proxy/cluster"
	"epsproxy/proxy/wire"
)

// StoreFile is the announcements file inside the data directory.
const StoreFile = "announcements.json"

// purgeEvery is how often expired announcements are dropped from the table and the file.
const purgeEvery = time.Minute

// Proxy is a running public proxy.
type Proxy struct {
	name   string
	s      Settings
	log    *slog.Logger
	base   proxy.Base
	table  *matcher.Table
	store  string
	mu     sync.Mutex // serialises announcement writes and saves (file mode)
	relay  *relay.Relay
	drain  atomic.Int64 // drain_timeout in nanoseconds (Reload changes it)
	eng    *engine.Engine
	client *epsclient.Client
	pool   *epsclient.Pool
	server *epsclient.Server
	// domains counts connections and relayed bytes per announced domain; obs feeds it from the
	// engine; calls times the EPS calls (metrics.go).
	domains *metrics.Domains
	obs     *observer
	calls   *metrics.Calls
	// cluster is the shared store of a proxy that runs as several instances (nil: file mode);
	// saveTimer and saving batch the saves of the local copy of its mirror.
	cluster   *cluster.Store
	saveTimer *time.Timer
	// bare holds the operators whose private proxies refused the client's addresses in
	// incomingConnection (incoming.go).
	bare   bareOperators
	saving atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
	runErr chan error
	failed chan error // the engine stopped while the proxy was serving
}

// New builds a public proxy from the common role parts and its settings block.
func New(base proxy.Base, s Settings) (*Proxy, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	p := &Proxy{
		name:   base.Name,
		s:      s,
		log:    base.Log.With("role", "public"),
		base:   base,
		table:  matcher.New(matcher.Options{}),
		store:  filepath.Join(base.DataDir, StoreFile),
		stop:   make(chan struct{}),
		runErr: make(chan error, 1),
		failed: make(chan error, 1),
	}
	rl, err := relay.New(s.Relay.Config(p.pairDone))
	if err != nil {
		return nil, err
	}
	p.relay = rl
	p.drain.Store(int64(s.Relay.DrainTimeout.D()))
	p.domains = metrics.NewDomains(engine.RefusalReasons(), rl, p.log)
	p.obs = newObserver(p.domains)
	p.calls = metrics.NewClientCalls()
	p.client = epsclient.NewClient(base.EPS, base.Identity, base.Name)
	p.client.Instrument(p.calls)
	p.pool = epsclient.NewPool(p.client, base.EPS.Workers, base.EPS.Queue)
	ecfg := s.engineConfig()
	ecfg.Observer = p.obs
	p.eng, err = engine.New(ecfg, p.table, p.notify, rl, p.log)
	if err != nil {
		rl.Close()
		p.pool.Close()
		return nil, err
	}
	if err := p.newCluster(); err != nil {
		rl.Close()
		p.pool.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	p.server = epsclient.NewServer(base.Name, p.log)
	p.server.Pin(base.EPS.Pins)
	p.server.Handle(wire.AnnounceConnections, epsclient.Typed(p.announceConnections))
	p.server.Handle(wire.GetAnnouncements, epsclient.Typed(p.getAnnouncements))
	p.server.Handle(wire.ReserveConnections, epsclient.Typed(p.reserveConnections))
	return p, nil
}

// Start restores the announcements, then opens the EPS endpoint and the two listeners.
func (p *Proxy) Start() error {
	if err := p.base.MakeDataDir(); err != nil {
		return err
	}
	rep, err := p.table.Load(p.store, time.Now())
	if err != nil {
		return fmt.Errorf("announcements: %w", err)
	}
	if err := p.server.Start(p.base.EPS.Listen, p.base.EPS.Path, p.base.Identity); err != nil {
		return fmt.Errorf("eps.listen: %w", err)
	}
	go func() { p.runErr <- p.eng.Run() }()
	select {
	case <-p.eng.Ready():
	case err := <-p.runErr:
		_ = p.server.Shutdown(context.Background())
		return fmt.Errorf("public.tls_bind/internal_bind: %w", err)
	case <-time.After(10 * time.Second):
		return errors.New("the engine did not start within 10 s")
	}
	// Logged once everything listens, so a failed start is one line.
	for _, e := range rep.Errors {
		p.log.Warn("stored announcement skipped", "file", p.store, "err", e)
	}
	p.log.Info("announcements restored", "file", p.store, "loaded", rep.Loaded, "expired", rep.Expired, "invalid", rep.Invalid)
	if p.cluster != nil {
		// The copy serves until the shared table is read; the store follows it from here on.
		p.cluster.Start()
		p.log.Info("sharing announcements through redis", "redis", p.s.Redis.Addr, "instance", p.s.InternalEndpoint)
	}
	p.log.Info("listening", "tls", p.s.TLSBind, "internal", p.s.InternalBind, "endpoint", p.s.InternalEndpoint, "eps", p.server.Addr())
	p.wg.Add(2)
	go p.purge()
	go p.watchGrants()
	go p.watchEngine()
	return nil
}

// watchEngine reports on Failed an engine that stops while the proxy serves: a proxy with a
// dead public port must not go on as if it listened.
func (p *Proxy) watchEngine() {
	err := <-p.runErr
	select {
	case <-p.stop:
		return // Stop stopped it
	default:
	}
	if err == nil {
		err = errors.New("the engine stopped")
	}
	p.log.Error("public listeners stopped; the proxy cannot serve", "err", err)
	p.failed <- fmt.Errorf("public.tls_bind/internal_bind: the listeners stopped: %w", err)
}

// Failed delivers an error when the proxy stops serving on its own (its public listeners
// died); the process should then exit.
func (p *Proxy) Failed() <-chan error { return p.failed }

// DrainTimeout is how long Stop lets relayed pairs finish: drain_timeout as last loaded.
func (p *Proxy) DrainTimeout() time.Duration { return time.Duration(p.drain.Load()) }

// Stop stops accepting clients, closes clients still waiting, lets relayed pairs finish within
// the drain timeout (or ctx), saves the announcements and releases everything.
func (p *Proxy) Stop(ctx context.Context) error {
	close(p.stop)
	p.wg.Wait()
	errs := []error{p.eng.Stop(ctx)}
	dctx, cancel := context.WithTimeout(ctx, p.DrainTimeout())
	defer cancel()
	if err := p.relay.Drain(dctx); err != nil {
		p.log.Warn("relayed connections cut at shutdown", "err", err)
	}
	errs = append(errs, p.server.Shutdown(ctx))
	p.pool.Close()
	p.client.Close()
	if p.cluster != nil {
		errs = append(errs, p.cluster.Close())
		p.saveTimer.Stop()
	}
	p.mu.Lock()
	errs = append(errs, p.table.Save(p.store))
	p.mu.Unlock()
	return errors.Join(errs...)
}

// pairDone runs on a relay loop for each finished pair: its bytes go to its domain's counters.
func (p *Proxy) pairDone(st relay.Stats) {
	p.domains.PairDone(st)
	if st.Err != nil {
		p.log.Debug("connection done", "domain", st.Tag, "client_to_private", st.AToB, "private_to_client", st.BToA, "reason", st.Reason, "err", st.Err)
		return
	}
	p.log.Debug("connection done", "domain", st.Tag, "client_to_private", st.AToB, "private_to_client", st.BToA, "reason", st.Reason)
}

// purge drops expired announcements now and then, so the file does not grow with dead names.
func (p *Proxy) purge() {
	defer p.wg.Done()
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			p.purgeExpired(ctx, time.Now())
			cancel()
		}
	}
}

// Loops is the number of goroutines that block in their own epoll_wait: the engine's event loops.
// (The relay's loops park in the runtime poller instead.)
func (p *Proxy) Loops() int { return p.eng.Loops() }

// Engine exposes the engine's counters (for tests and metrics).
func (p *Proxy) Engine() *engine.Engine { return p.eng }

// Relay exposes the relay (for tests and metrics).
func (p *Proxy) Relay() *relay.Relay { return p.relay }

// Stats is the public proxy's section of the admin stats.
type Stats struct {
	Accepted, Refused, NoRoute, Matched, Paired, StandbyPaired, StandbyReused, Parked, StandbyGone, Expired, NotifyFailed, BadTokens, HelloTimeouts, RateLimited, Overloaded, SourceBusy int64
	HelloConns, Pending, StandbyParked, StandbyTokens, Pairs, PipesInUse, PipesOpen, Announcements, EPSQueued                                                                            int
	// Cluster is the shared store's state (nil without one).
	Cluster *cluster.Stats
}

// Stats returns the counters of the engine, the relay and the table. Safe from any goroutine.
func (p *Proxy) Stats() Stats {
	e := p.eng.Stats()
	parked, tokens := p.eng.Standby()
	st := Stats{
		StandbyPaired: e.StandbyPaired.Load(), StandbyReused: e.StandbyReused.Load(), Parked: e.Parked.Load(), StandbyParked: parked, StandbyTokens: tokens,
		Accepted: e.Accepted.Load(), Refused: e.Refused.Load(), NoRoute: e.NoRoute.Load(), Matched: e.Matched.Load(),
		Paired: e.Paired.Load(), Expired: e.Expired.Load(), NotifyFailed: e.NotifyFailed.Load(), BadTokens: e.BadTokens.Load(),
		HelloTimeouts: e.HelloTimeouts.Load(), RateLimited: e.RateLimited.Load(), Overloaded: e.Overloaded.Load(), SourceBusy: e.SourceBusy.Load(),
		HelloConns: p.eng.HelloConns(), Pending: p.eng.Pending(), Pairs: p.relay.Pairs(), PipesInUse: p.relay.PipesInUse(),
		PipesOpen: p.relay.PipesOpen(), Announcements: p.table.Len(), EPSQueued: p.pool.Queued(),
		StandbyGone: e.StandbyGone.Load(),
	}
	if p.cluster != nil {
		cs := p.cluster.Stats()
		st.Cluster = &cs
	}
	return st
}

// watchGrants withdraws, at start and every GrantCheckEvery, the names whose announcer the
// directory no longer grants them: a grant removed from the directory takes effect here without
// waiting for the announcer to come back.
func (p *Proxy) watchGrants() {
	defer p.wg.Done()
	proxy.Every(p.stop, p.s.GrantCheckEvery.D(), p.checkGrants)
}

// checkGrants asks the node for the announcers' current grants and withdraws what they no
// longer cover. If the node cannot be asked, nothing changes.
func (p *Proxy) checkGrants(ctx context.Context) {
	now := time.Now()
	byOperator := map[string][]string{}
	for _, a := range p.table.List(now) {
		byOperator[a.Operator] = append(byOperator[a.Operator], a.Domain)
	}
	if len(byOperator) == 0 {
		return
	}
	ops := slices.Sorted(maps.Keys(byOperator))
	grants, err := proxy.CurrentGrants(ctx, p.client, p.name, ops)
	if err != nil {
		p.log.Debug("grants not checked: the node did not answer", "err", err)
		return
	}
	for _, op := range ops {
		for _, domain := range byOperator[op] {
			if matcher.Allowed(grants[op], domain) {
				continue
			}
			if err := p.withdraw(ctx, op, domain); err == nil {
				p.log.Warn("announcement withdrawn: the directory no longer grants it", "operator", op, "domain", domain)
			}
		}
	}
}

package private

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"epsproxy/engine/relay"
	"epsproxy/epsclient"
	"epsproxy/internal/config"
	"epsproxy/internal/metrics"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// Proxy is a running private proxy.
type Proxy struct {
	name   string
	s      Settings // defaults applied
	log    *slog.Logger
	base   proxy.Base
	anns   *announcements
	client *epsclient.Client
	server *epsclient.Server
	relay  *relay.Relay
	dialer *net.Dialer // every blocking connect (see dialer.go)
	term   *terminator // nil: TLS passes through
	dials  chan dialJob
	// cur holds the settings in force: New's, then each Reload's. The keys a reload changes are
	// read from it where they are used (live()); s keeps what only a restart changes (binds,
	// workers, terminate_tls, relay_loops...).
	cur   atomic.Pointer[Settings]
	drain atomic.Int64 // drain_timeout in nanoseconds
	// standbyMu orders starting the standby manager (at Start, or at the Reload that turns
	// standby on) against Stop: managing says it runs, stopped that Stop has begun.
	standbyMu         sync.Mutex
	managing, stopped bool

	// learned holds, per public proxy, the internal endpoints its last reserveConnections gave
	// (its own, and every live instance's of a proxy that runs several): where a dial-back for
	// it may go when no endpoint is pinned.
	learnedMu sync.Mutex
	learned   map[string][]string
	// placers holds each public proxy's first standby pool (*standbyPool), which asks where to
	// dial when a dial-back names an endpoint not heard of.
	placers sync.Map

	relayed atomic.Int64 // Stats.Relayed

	// reannounce is ReannounceEvery in nanoseconds (Reload changes it); withdrawals are names a
	// reload dropped that their public proxies have not confirmed withdrawn yet.
	reannounce  atomic.Int64
	withdrawMu  sync.Mutex
	withdrawals map[key]struct{}
	// domains counts clients and relayed bytes per announced domain; calls times the EPS calls
	// (metrics.go).
	domains *metrics.Domains
	calls   *metrics.Calls

	changed chan struct{} // announcements changed: announce now
	stop    chan struct{}
	wg      sync.WaitGroup
}

// New builds a private proxy from the common role parts and its settings block.
func New(base proxy.Base, s Settings) (*Proxy, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	p := &Proxy{
		name:        base.Name,
		s:           s,
		log:         base.Log.With("role", "private"),
		base:        base,
		anns:        newAnnouncements(filepath.Join(base.DataDir, StoreFile)),
		dialer:      &net.Dialer{}, // bounded by dial_timeout through each dial's context (live)
		dials:       make(chan dialJob, s.Queue),
		learned:     map[string][]string{},
		withdrawals: map[key]struct{}{},
		changed:     make(chan struct{}, 1),
		stop:        make(chan struct{}),
	}
	set := configured(s)
	p.anns.cur.Store(&set)
	p.reannounce.Store(int64(s.ReannounceEvery.D()))
	p.cur.Store(&s)
	p.drain.Store(int64(s.Relay.DrainTimeout.D()))
	rl, err := relay.New(s.Relay.Config(p.pairDone))
	if err != nil {
		return nil, err
	}
	p.relay = rl
	p.domains = metrics.NewDomains(refusalReasons, rl, p.log)
	if t := s.TerminateTLS; t != nil {
		cert, err := tls.LoadX509KeyPair(string(t.CertFile), string(t.KeyFile))
		if err != nil {
			rl.Close()
			return nil, config.Errorf("terminate_tls.cert_file", "%v", err)
		}
		p.term = newTerminator(cert, p.dial, p.relay, p.log)
	}
	p.calls = metrics.NewClientCalls()
	p.client = epsclient.NewClient(base.EPS, base.Identity, base.Name)
	p.client.Instrument(p.calls)
	p.server = epsclient.NewServer(base.Name, p.log)
	p.server.Pin(base.EPS.Pins)
	p.server.Handle(wire.IncomingConnection, epsclient.Typed(p.incomingConnection))
	p.server.Handle(wire.AnnounceConnection, epsclient.Typed(p.announceConnection))
	p.server.Handle(wire.GetAnnouncements, epsclient.Typed(p.getAnnouncements))
	return p, nil
}

// Start restores persisted announcements (configured ones win for the same name and public
// proxy), serves the EPS endpoint and starts the dial-back workers and the announcer.
func (p *Proxy) Start() error {
	if err := p.base.MakeDataDir(); err != nil {
		return err
	}
	stored, err := loadStore(p.anns.path)
	if err != nil {
		return fmt.Errorf("announcements: %w", err)
	}
	now := time.Now()
	restored := 0
	err = p.anns.update(func(m map[key]Announcement) error {
		for _, a := range stored {
			k := key{a.Domain, a.Proxy}
			if _, configured := m[k]; configured || !live(a, now) {
				continue
			}
			if h, held := holder(m, a, now); held {
				p.log.Warn("stored announcement dropped: its name is held by another owner", "domain", a.Domain, "owner", a.Owner, "held_as", h.Domain)
				continue
			}
			m[k] = a
			restored++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("announcements: %w", err)
	}
	if err := p.server.Start(p.base.EPS.Listen, p.base.EPS.Path, p.base.Identity); err != nil {
		return fmt.Errorf("eps.listen: %w", err)
	}
	p.log.Info("announcements restored", "file", p.anns.path, "restored", restored, "total", len(p.anns.snapshot()))
	p.wg.Add(p.s.Workers + 2)
	for range p.s.Workers {
		go p.dialWorker()
	}
	go p.announcer()
	go p.watchGrants()
	if p.s.standbyOn() {
		p.startStandby()
	}
	p.log.Info("serving", "eps", p.server.Addr(), "internal", p.s.InternalEndpoint)
	return nil
}

// live returns the settings in force (see Proxy.cur).
func (p *Proxy) live() *Settings { return p.cur.Load() }

// DrainTimeout is how long Stop lets relayed pairs finish: drain_timeout as last loaded.
func (p *Proxy) DrainTimeout() time.Duration { return time.Duration(p.drain.Load()) }

// startStandby starts the standby manager once, unless Stop has begun.
func (p *Proxy) startStandby() {
	p.standbyMu.Lock()
	defer p.standbyMu.Unlock()
	if p.stopped || p.managing {
		return
	}
	p.managing = true
	p.wg.Add(1)
	go p.standbyManager()
}

// Stop stops taking connections and announcing, lets relayed pairs finish within the drain
// timeout (or ctx), and saves the announcements.
func (p *Proxy) Stop(ctx context.Context) error {
	errs := []error{p.server.Shutdown(ctx)}
	p.standbyMu.Lock()
	p.stopped = true
	p.standbyMu.Unlock()
	close(p.stop)
	p.wg.Wait()
	dctx, cancel := context.WithTimeout(ctx, p.DrainTimeout())
	defer cancel()
	if err := p.relay.Drain(dctx); err != nil {
		p.log.Warn("relayed connections cut at shutdown", "err", err)
	}
	if p.term != nil {
		if err := p.term.shutdown(dctx); err != nil {
			p.log.Warn("terminated connections cut at shutdown", "err", err)
		}
	}
	p.client.Close()
	errs = append(errs, p.anns.persist())
	return errors.Join(errs...)
}

// pairDone runs on a relay loop for each finished pair: its bytes go to its domain's counters.
func (p *Proxy) pairDone(st relay.Stats) {
	if _, inner := st.Tag.(innerHop); inner {
		return // the client's own pair reports it
	}
	p.domains.PairDone(st)
	p.relayed.Add(1)
	if st.BToA == 0 && st.Reason == relay.ReasonFailed {
		// Nothing came back from the internal side: most likely it refused or never
		// completed the connect (standby connections start it without waiting).
		p.log.Warn("connection failed before the internal server answered; client closed", "domain", st.Tag, "err", st.Err)
		return
	}
	p.log.Debug("connection done", "domain", st.Tag, "public_to_internal", st.AToB, "internal_to_public", st.BToA, "reason", st.Reason, "err", st.Err)
}

// Relay exposes the relay (for tests and metrics).
func (p *Proxy) Relay() *relay.Relay { return p.relay }

// Stats is the private proxy's section of the admin stats. StandbyWaiting counts the standby
// sockets waiting for a client, over every public proxy.
type Stats struct {
	Pairs, PipesInUse, PipesOpen, DialsQueued, Announcements, StandbyWaiting int
	// Relayed counts the connections relayed and finished since start.
	Relayed int64
	// Terminated counts the open connections whose TLS this proxy terminates (terminate_tls).
	Terminated int
}

// Stats returns the relay's and the dial pool's state. Safe from any goroutine.
func (p *Proxy) Stats() Stats {
	st := Stats{Pairs: p.relay.Pairs(), PipesInUse: p.relay.PipesInUse(), PipesOpen: p.relay.PipesOpen(),
		DialsQueued: len(p.dials), Announcements: len(p.anns.snapshot()), StandbyWaiting: p.relay.Awaiting(),
		Relayed: p.relayed.Load()}
	if p.term != nil {
		st.Terminated = p.term.connections()
	}
	return st
}

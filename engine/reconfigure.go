package engine

import (
	"sync/atomic"
	"time"
)

// A reload (SIGHUP) changes the limits below while the engine runs: the event loops read them
// through atomics and the tables under their own locks, so a new value applies to the next
// connection, and every connection already in a phase or relayed goes on as it was.

// Limits are the parts of Config an engine applies while it runs. Zero values take Config's
// defaults, negative ones turn a per-source cap off.
type Limits struct {
	HelloTimeout, TokenTimeout, AcceptTimeout time.Duration
	MaxHelloConns                             int
	MaxHelloPerSource                         int
	MaxTokenConns, MaxTokenPerSource          int
	PublicRate, InternalRate                  RateLimit
	StandbyTTL, StandbyTokenTTL               time.Duration
}

// live holds the limits the loops read on every new connection.
type live struct {
	helloTimeout, tokenTimeout, acceptTimeout atomic.Int64 // nanoseconds
	maxHelloConns                             atomic.Int64
	pubRate, intRate                          atomic.Pointer[limiter]
}

func (l *live) set(c Config) {
	l.helloTimeout.Store(int64(c.HelloTimeout))
	l.tokenTimeout.Store(int64(c.TokenTimeout))
	l.acceptTimeout.Store(int64(c.AcceptTimeout))
	l.maxHelloConns.Store(int64(c.MaxHelloConns))
	l.pubRate.Store(newLimiter(c.PublicRate))
	l.intRate.Store(newLimiter(c.InternalRate))
}

// Reconfigure applies new limits to the running engine. A per-source cap that was off when the
// engine started cannot be turned on (the phase was not being counted): such keys are returned
// in restart, and keep running as they are. A rate limit starts a fresh window. Safe from any
// goroutine.
func (e *Engine) Reconfigure(l Limits) (restart []string, err error) {
	c := e.cfg
	c.HelloTimeout, c.TokenTimeout, c.AcceptTimeout = l.HelloTimeout, l.TokenTimeout, l.AcceptTimeout
	c.MaxHelloConns, c.MaxHelloPerSource = l.MaxHelloConns, l.MaxHelloPerSource
	c.MaxTokenConns, c.MaxTokenPerSource = l.MaxTokenConns, l.MaxTokenPerSource
	c.PublicRate, c.InternalRate = l.PublicRate, l.InternalRate
	c.StandbyTTL, c.StandbyTokenTTL = l.StandbyTTL, l.StandbyTokenTTL
	// e.cfg is filled already; fill again gives the new values their defaults (only the fields
	// applied below are read).
	if err := c.fill(); err != nil {
		return nil, err
	}
	if !e.helloCap.setLimits(c.MaxHelloPerSource, 0) {
		restart = append(restart, "max_hello_per_source")
	}
	if !e.tokenCap.setLimits(c.MaxTokenPerSource, c.MaxTokenConns) {
		restart = append(restart, "max_token_conns", "max_token_per_source")
	}
	e.live.set(c)
	e.standby.setTTLs(c.StandbyTTL, c.StandbyTokenTTL)
	return restart, nil
}

func (e *Engine) helloTimeout() time.Duration  { return time.Duration(e.live.helloTimeout.Load()) }
func (e *Engine) tokenTimeout() time.Duration  { return time.Duration(e.live.tokenTimeout.Load()) }
func (e *Engine) acceptTimeout() time.Duration { return time.Duration(e.live.acceptTimeout.Load()) }

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
	MaxPending, MaxStandby                    int
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

// Reconfigure applies new limits to the running engine. A cap turned on counts the connections
// that enter its phase from then on (those already in it finish uncounted). A rate limit starts
// a fresh window. Safe from any goroutine.
func (e *Engine) Reconfigure(l Limits) error {
	c := e.cfg
	c.HelloTimeout, c.TokenTimeout, c.AcceptTimeout = l.HelloTimeout, l.TokenTimeout, l.AcceptTimeout
	c.MaxHelloConns, c.MaxHelloPerSource = l.MaxHelloConns, l.MaxHelloPerSource
	c.MaxTokenConns, c.MaxTokenPerSource = l.MaxTokenConns, l.MaxTokenPerSource
	c.PublicRate, c.InternalRate = l.PublicRate, l.InternalRate
	c.StandbyTTL, c.StandbyTokenTTL = l.StandbyTTL, l.StandbyTokenTTL
	c.MaxPending, c.MaxStandby = l.MaxPending, l.MaxStandby
	// e.cfg is filled already; fill again gives the new values their defaults (only the fields
	// applied below are read).
	if err := c.fill(); err != nil {
		return err
	}
	e.helloCap.setLimits(c.MaxHelloPerSource, 0)
	e.tokenCap.setLimits(c.MaxTokenPerSource, c.MaxTokenConns)
	e.live.set(c)
	e.standby.setTTLs(c.StandbyTTL, c.StandbyTokenTTL)
	e.standby.setMax(c.MaxStandby)
	e.pending.setMax(c.MaxPending)
	return nil
}

func (e *Engine) helloTimeout() time.Duration  { return time.Duration(e.live.helloTimeout.Load()) }
func (e *Engine) tokenTimeout() time.Duration  { return time.Duration(e.live.tokenTimeout.Load()) }
func (e *Engine) acceptTimeout() time.Duration { return time.Duration(e.live.acceptTimeout.Load()) }

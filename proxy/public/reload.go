package public

import (
	"epsproxy/engine"
	"epsproxy/proxy"
)

// liveKeys are the keys of the public block a reload applies at once: the engine's timeouts,
// caps, rate limits and standby caps and lifetimes (engine.Reconfigure) and the relay's
// timeouts and cap.
var liveKeys = append([]string{
	"hello_timeout", "token_timeout", "accept_timeout", "max_hello_conns", "max_pending",
	"max_hello_per_source", "max_token_conns", "max_token_per_source",
	"rate_limits.public.limit", "rate_limits.public.window", "rate_limits.internal.limit", "rate_limits.internal.window",
	"standby_max", "standby_ttl", "standby_token_ttl",
}, proxy.LiveRelayKeys...)

// Reload applies settings read again (SIGHUP): the timeouts, caps and rate limits apply to the
// next connection, and every connection already accepted or relayed goes on as it was. The other
// changed keys (binds, loops, relay_loops, the Redis block...) keep their running values and
// are returned in restart. Nothing changes when err is not nil.
func (p *Proxy) Reload(s Settings) (restart []string, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	ec := s.engineConfig()
	err = p.eng.Reconfigure(engine.Limits{
		HelloTimeout: ec.HelloTimeout, TokenTimeout: ec.TokenTimeout, AcceptTimeout: ec.AcceptTimeout,
		MaxHelloConns: ec.MaxHelloConns, MaxHelloPerSource: ec.MaxHelloPerSource,
		MaxTokenConns: ec.MaxTokenConns, MaxTokenPerSource: ec.MaxTokenPerSource,
		MaxPending: ec.MaxPending, MaxStandby: ec.MaxStandby,
		PublicRate: ec.PublicRate, InternalRate: ec.InternalRate,
		StandbyTTL: ec.StandbyTTL, StandbyTokenTTL: ec.StandbyTokenTTL,
	})
	if err != nil {
		return nil, err
	}
	if err := s.Relay.Apply(p.relay); err != nil {
		return nil, err
	}
	p.drain.Store(int64(s.Relay.DrainTimeout.D()))
	p.log.Info("settings reloaded", "hello_timeout", ec.HelloTimeout, "rate_limits.public", ec.PublicRate.Limit)
	return proxy.RestartKeys(p.s, s, liveKeys), nil
}

// Package proxy holds what the two proxies share: their settings file (one block per role) and
// the pieces every role starts with (logger, TLS identity, EPS client). The roles themselves are
// proxy/public and proxy/private; cmd/proxy picks one.
//
// Typical usage:
//
//	var s proxy.Settings
//	err := config.Load("PROXY_SETTINGS", "PROXY_", &s)
//	p, err := public.New(s.Base(logger), *s.Public)
//
// It must not hold either role's behaviour.
package proxy

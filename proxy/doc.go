// Package proxy holds what the two proxy roles are built from and share: Base (the operator's
// name and TLS identity, the link to its EPS node, its data directory and logger) and
// RelaySettings (the relay's caps and timeouts, with their defaults, the same keys in both
// roles' settings blocks), Grant (what the directory lets a caller announce here, the check every
// method that takes names starts with) and CheckHostPort. The roles are proxy/public and proxy/private; the EPS contract between
// them is proxy/wire; cmd/proxy reads the settings file and starts one role.
//
// Typical usage (what cmd/proxy does):
//
//	base := proxy.Base{Name: name, Identity: id, EPS: eps.WithDefaults(), DataDir: dir, Log: log}
//	p, err := public.New(base, settings.Public)
//
// It must not hold either role's behaviour, nor import them.
package proxy

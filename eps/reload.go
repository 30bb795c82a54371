package eps

import (
	"fmt"
	"slices"

	"epsproxy/internal/config"
)

// Reload applies settings read again (SIGHUP): the directory (groups, grants, pins, node
// addresses) and the call timeout take effect for every call that starts after it returns;
// calls in flight and peer links are not dropped. Connections to a peer whose address changed
// are replaced once idle. Keys that need a new process (the name, the TLS identity, the binds,
// the service endpoints, max_inflight, admin) keep their running values, and Reload returns them
// in restart so the caller can say so. Nothing changes when err is not nil: the settings or the
// directory do not load, or the new directory no longer pins this node's own certificate.
func (n *Node) Reload(s Settings) (restart []string, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	if s.Name != n.name {
		return nil, config.Errorf("name", "a running node keeps its name %q", n.name)
	}
	dir, err := loadDirectory(s)
	if err != nil {
		return nil, err
	}
	if err := dir.Pinned(n.name, n.id.Cert.Leaf); err != nil {
		return nil, fmt.Errorf("directory: the running certificate of %s: %w", n.name, err)
	}
	old := n.s
	for key, same := range map[string]bool{
		"tls": s.TLS == old.TLS, "peer.bind": s.Peer.Bind == old.Peer.Bind,
		"local.bind": s.Local.Bind == old.Local.Bind, "local.path": s.Local.Path == old.Local.Path,
		"service":      slices.Equal(s.ServiceEndpoints(), old.ServiceEndpoints()) && s.Service.HealthEvery == old.Service.HealthEvery,
		"max_inflight": s.MaxInflight == old.MaxInflight, "admin": s.Admin == old.Admin,
	} {
		if !same {
			restart = append(restart, key)
		}
	}
	slices.Sort(restart)
	n.dir.Store(dir)
	n.ids.Clear() // the _client objects carry directory entries
	n.timeout.Store(int64(s.CallTimeout.D()))
	n.peers.CloseIdleConnections()
	n.log.Info("directory and settings reloaded", "operators", len(dir.Names()), "call_timeout", s.CallTimeout.D())
	return restart, nil
}

package eps

import (
	"fmt"
	"slices"

	"epsproxy/internal/config"
)

// Reload applies settings read again (SIGHUP). For every call that starts after it returns:
//   - the directory (groups, grants, pins, node addresses); connections to a peer whose address
//     changed are replaced once idle;
//   - call_timeout;
//   - max_inflight: calls in flight keep running; a lowered cap admits no new call until fewer
//     than it are in flight, a raised one admits more at once;
//   - the service endpoints (service.endpoint, service.endpoints) and service.health_every: when
//     either changed, a new service is built from them and started (its prober probes every
//     endpoint at once) and put in place of the old one, whose prober then stops. Calls in flight
//     on the old endpoints finish there; the old endpoints' connections are closed once idle. An
//     endpoint whose URL stays in the list keeps its counters and its up or down state; a new one
//     starts believed up, as at start.
//
// Calls in flight and peer links are not dropped. Keys that need a new process (tls, peer.bind,
// local.bind, local.path, admin) keep their running values, and Reload returns the ones that
// changed in restart so the caller can say so; a changed name is refused. Nothing changes when
// err is not nil: the settings or the directory do not load, or the new directory no longer pins
// this node's own certificate.
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
	old := n.s // the running values of the keys only a restart applies
	for key, same := range map[string]bool{
		"tls": s.TLS == old.TLS, "peer.bind": s.Peer.Bind == old.Peer.Bind,
		"local.bind": s.Local.Bind == old.Local.Bind, "local.path": s.Local.Path == old.Local.Path,
		"admin": s.Admin == old.Admin,
	} {
		if !same {
			restart = append(restart, key)
		}
	}
	slices.Sort(restart)
	n.dir.Store(dir)
	n.ids.Clear() // the _client objects carry directory entries
	n.timeout.Store(int64(s.CallTimeout.D()))
	n.maxInflight.Store(int64(s.MaxInflight))
	n.peers.CloseIdleConnections()
	n.reloadService(s)
	n.log.Info("directory and settings reloaded", "operators", len(dir.Names()), "call_timeout", s.CallTimeout.D(), "max_inflight", s.MaxInflight)
	return restart, nil
}

// reloadService puts a service built from s in place of the running one when s names other
// endpoints or another health_every, and stops the old one. Once the node has started, the new
// service is started before it is put in place; after Shutdown nothing is replaced.
func (n *Node) reloadService(s Settings) {
	n.life.Lock()
	defer n.life.Unlock()
	cur := n.svc.Load()
	urls := s.ServiceEndpoints()
	switch {
	case n.stopping:
		return
	case cur == nil && len(urls) == 0:
		return
	case cur != nil && slices.Equal(cur.urls(), urls) && cur.every == s.Service.HealthEvery.D():
		return
	}
	next := n.newService(s, cur)
	if next != nil && n.started {
		next.start()
	}
	n.svc.Store(next)
	if cur != nil {
		cur.close()
	}
	n.log.Info("service endpoints replaced", "endpoints", len(urls), "health_every", s.Service.HealthEvery.D())
}

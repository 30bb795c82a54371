package eps

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/metrics"
)

// Node is one EPS node. Create it with New, then Start; Shutdown stops it. It owns its
// listeners, its links to other nodes and its service (the endpoints it delivers to, with their
// transports and prober); Reload replaces the service whole.
type Node struct {
	// s are the settings New was given: the running values of the keys only a restart applies.
	s    Settings
	name string
	log  *slog.Logger
	dir  atomic.Pointer[directory.Directory] // replaced whole by Reload
	// timeout is the call timeout in nanoseconds (Reload changes it).
	timeout atomic.Int64
	id      *config.Identity
	peers   *http.Client // to other nodes, dialled by operator name
	// svc is this operator's service; nil when no endpoint is configured. Reload replaces it
	// whole; a call loads it once and finishes on the one it loaded.
	svc atomic.Pointer[service]
	// inflight counts the calls being delivered; maxInflight is the cap on it in force
	// (max_inflight, which Reload changes).
	inflight, maxInflight atomic.Int64
	ids                   sync.Map       // caller name -> encoded _client object
	srvs                  []*http.Server // local and peer servers
	lns                   []net.Listener
	start                 time.Time
	// life serialises Start, Reload's replacing of the service and Shutdown, so that a service
	// Reload builds runs its prober only between Start and Shutdown.
	life              sync.Mutex
	started, stopping bool
	// deliveries times the calls delivered to the service; nil until Metrics.
	deliveries *metrics.Calls
}

// New checks the settings, loads the directory and the TLS identity, and builds the node; it
// opens no socket yet.
func New(s Settings, log *slog.Logger) (*Node, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	dir, err := loadDirectory(s)
	if err != nil {
		return nil, err
	}
	id, err := s.TLS.Load()
	if err != nil {
		return nil, config.Join("tls", err)
	}
	leaf := id.Cert.Leaf
	if leaf == nil || !certNames(leaf, s.Name) {
		return nil, config.Errorf("tls.cert_file", "the certificate is not for %q", s.Name)
	}
	if err := dir.Pinned(s.Name, leaf); err != nil {
		return nil, config.Errorf("tls.cert_file", "%v", err)
	}
	n := &Node{
		s:    s,
		name: s.Name,
		log:  log.With("node", s.Name),
		id:   id,
	}
	n.dir.Store(dir)
	n.timeout.Store(int64(s.CallTimeout.D()))
	n.maxInflight.Store(int64(s.MaxInflight))
	n.peers = &http.Client{Transport: n.peerTransport()}
	n.svc.Store(n.newService(s, nil))
	return n, nil
}

// newService builds the service that s names (nil when it names no endpoint), not started. prev
// is the service it replaces (nil at start): an endpoint in both keeps its counters and state.
func (n *Node) newService(s Settings, prev *service) *service {
	urls := s.ServiceEndpoints()
	if len(urls) == 0 {
		return nil
	}
	return newService(urls, n.serviceTLS(), s.Service.HealthEvery.D(), prev, n.log)
}

// serviceTLS is the client configuration the node reaches its service with: the node's identity,
// and the service must hold the operator's own certificate, by its name and, where the directory
// in force at the handshake pins the operator's certificates, one of those.
func (n *Node) serviceTLS() *tls.Config {
	tc := n.id.ClientConfig(n.name)
	byName := tc.VerifyConnection
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := byName(cs); err != nil {
			return err
		}
		return n.directory().Pinned(n.name, cs.PeerCertificates[0])
	}
	return tc
}

// loadDirectory reads the directory the settings name and checks that it lists the node.
func loadDirectory(s Settings) (*directory.Directory, error) {
	paths := make([]string, len(s.Directory.Paths))
	for i, p := range s.Directory.Paths {
		paths[i] = string(p)
	}
	dir, err := directory.Load(paths)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if dir.Entry(s.Name) == nil {
		return nil, config.Errorf("name", "operator %q is not in the directory", s.Name)
	}
	return dir, nil
}

// directory is the directory in force: the one loaded at start or by the last Reload.
func (n *Node) directory() *directory.Directory { return n.dir.Load() }

// callTimeout bounds one call from the moment the node receives it.
func (n *Node) callTimeout() time.Duration { return time.Duration(n.timeout.Load()) }

// writeMargin is what the answer to a call has to be written, beyond the call's own timeout.
const writeMargin = 5 * time.Second

// callContext bounds the call r carries by the call timeout in force, and gives its answer as
// long to be written, plus writeMargin: the servers' write timeout is set at Start, and a reload
// may raise call_timeout past it.
func (n *Node) callContext(w http.ResponseWriter, r *http.Request) (context.Context, context.CancelFunc) {
	d := n.callTimeout()
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + writeMargin))
	return context.WithTimeout(r.Context(), d)
}

func certNames(leaf interface{ VerifyHostname(string) error }, name string) bool {
	return leaf.VerifyHostname(name) == nil
}

// Start opens the local and peer listeners and serves them until Shutdown. Both listeners are
// open before anything is served or logged, so a taken port fails with one clear error.
func (n *Node) Start() error {
	local := http.NewServeMux()
	local.HandleFunc(n.s.Local.Path, n.serveLocal)
	peer := http.NewServeMux()
	peer.HandleFunc(peerPath, n.servePeer)
	n.start = time.Now()
	faces := []struct {
		what, addr string
		h          http.Handler
	}{{"local API", n.s.Local.Bind, local}, {"peer link", n.s.Peer.Bind, peer}}
	for _, f := range faces {
		ln, err := net.Listen("tcp", f.addr)
		if err != nil {
			n.closeAll()
			key := map[string]string{"local API": "local.bind", "peer link": "peer.bind"}[f.what]
			return fmt.Errorf("%s %s: %w", key, f.addr, err)
		}
		n.lns = append(n.lns, ln)
	}
	for i, f := range faces {
		srv := jsonrpc.NewHTTPServer(f.h, n.id.ServerConfig(), n.s.CallTimeout.D()+writeMargin, n.log)
		n.srvs = append(n.srvs, srv)
		ln := jsonrpc.LimitListener(n.lns[i], jsonrpc.MaxConnsPerSource, jsonrpc.MaxConns)
		go func(what string) {
			if err := srv.Serve(tls.NewListener(ln, srv.TLSConfig)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("server stopped", "what", what, "err", err)
			}
		}(f.what)
		n.log.Info("listening", "what", f.what, "addr", ln.Addr().String())
	}
	n.life.Lock()
	n.started = true
	if svc := n.svc.Load(); svc != nil {
		svc.start()
	}
	n.life.Unlock()
	return nil
}

// LocalAddr is the address the local API listens on (after Start).
func (n *Node) LocalAddr() string { return n.lns[0].Addr().String() }

// PeerAddr is the address the peer link listens on (after Start).
func (n *Node) PeerAddr() string { return n.lns[1].Addr().String() }

// Shutdown stops accepting calls, lets calls in flight finish until ctx ends, then closes.
func (n *Node) Shutdown(ctx context.Context) error {
	var first error
	for _, s := range n.srvs {
		if err := s.Shutdown(ctx); err != nil && first == nil {
			first = err
		}
	}
	n.peers.CloseIdleConnections()
	n.life.Lock()
	defer n.life.Unlock()
	if n.stopping {
		return first
	}
	n.stopping = true
	if svc := n.svc.Load(); svc != nil {
		svc.close()
	}
	return first
}

// Stats is the node's section of /debug/stats: its service endpoints, in settings order.
type Stats struct {
	Service []EndpointStats
}

// Stats returns the state and counters of the service endpoints. Safe from any goroutine.
func (n *Node) Stats() Stats {
	svc := n.svc.Load()
	if svc == nil {
		return Stats{Service: []EndpointStats{}}
	}
	return Stats{Service: svc.stats()}
}

func (n *Node) closeAll() {
	for _, ln := range n.lns {
		ln.Close()
	}
}

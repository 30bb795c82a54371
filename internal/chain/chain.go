// Package chain is the harness of the end-to-end tests (e2e) and of the benchmark
// (bench/harness): it runs the demo chain, the internal server, both proxies and both EPS nodes,
// as real processes built from ./cmd, on free loopback ports, so what is tested and measured is
// the dev configuration a user runs, changed only by the overlays a caller writes.
//
// It owns what it creates for one chain: the processes it starts and their logs, a copy of the
// repository's settings/dev tree with a fresh dev PKI and a port overlay written into it, and
// the ports it takes from the allocator given to New (the chain's listeners and the admin
// listeners EnableAdmin turns on; the port overlay turns every other admin listener off, so
// the dev settings' fixed admin ports are never bound). It reads a process's /debug/stats (Stats) and /metrics
// (Metrics); figures from /proc come from internal/proc.
//
// It must not touch the repository's settings/dev or any process it did not start. Nothing the
// products run imports it: the commands and the packages they build on work without it.
//
// Typical use:
//
//	c, err := chain.New(root, dir, bin, freeAddr) // after chain.Build(root, bin)
//	_ = c.EnableAdmin(chain.Public)                // before Start, to read Stats
//	err = c.StartAll()
//	defer c.StopAll(10 * time.Second)
//	err = c.WaitReady(ctx)
//	st, err := c.Stats(ctx, chain.Public)
package chain

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"epsproxy/internal/pki"
	"epsproxy/internal/testnet"
)

// Process names.
const (
	Internal   = "internal-server"
	Public     = "public-proxy"
	Private    = "private-proxy"
	PublicEPS  = "public-eps"
	PrivateEPS = "private-eps"
	// OtherEPS is the node of other-operator.ga, who may add names at run time; not in All.
	OtherEPS = "other-eps"
)

// Domain is the name the dev private proxy announces.
const Domain = "test.internal-server.local"

// All lists the processes in start order.
var All = []string{Internal, PublicEPS, PrivateEPS, Public, Private}

// The second public proxy instance and the second private proxy of a cluster chain (NewCluster).
const (
	PublicB  = "public-proxy-b"
	PrivateB = "private-proxy-b"
)

// ClusterAll lists a cluster chain's processes in start order. Redis is the caller's.
var ClusterAll = []string{Internal, PublicEPS, PrivateEPS, Public, PublicB, Private, PrivateB}

// Ports of one chain. The B ports are the second instances' of a cluster chain.
type Ports struct {
	PublicTLS, PublicInternal, PublicEPS          string
	PublicNodePeer, PublicNodeLocal               string
	PrivateEPS, PrivateNodePeer, PrivateNodeLocal string
	Internal                                      string
	OtherNodePeer, OtherNodeLocal                 string
	PublicTLSB, PublicInternalB, PublicEPSB       string
	PrivateEPSB                                   string
}

// Chain is one chain's settings tree and processes.
type Chain struct {
	Dir   string // the settings copy: Dir/settings/dev/...
	Bin   string // directory holding the built commands
	Ports Ports
	Roots *x509.CertPool
	Env   map[string][]string // extra environment per process
	Args  map[string][]string // extra command-line arguments per process (the internal server's flags, say)

	freeAddr func() (string, error)
	// cluster: the processes are the cluster-* roles, with Redis at redis (NewCluster).
	cluster bool
	redis   string

	mu    sync.Mutex
	procs map[string]*exec.Cmd
	waits map[string]chan error
	admin map[string]string // process -> admin listener address
}

// FreeAddr returns a free loopback address, the port released for the caller to bind, for the
// benchmarks' chains: internal/testnet.Addr, which picks it below the kernel's ephemeral range.
// A port from listen(":0") comes from that range, and before the chain's process bound it, one
// of the harness's many outgoing connections could take it as its source port: a benchmark run
// once stopped on "peer.bind ...: address already in use".
func FreeAddr() (string, error) { return testnet.Addr() }

// RepoRoot finds the repository root (the directory with go.mod) from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build compiles the chain's commands into bin.
func Build(root, bin string) error {
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/eps", "./cmd/proxy", "./cmd/internal-server")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// New prepares a chain in dir with commands from bin: copies settings/dev from the repository
// at root, issues a PKI and writes the port overlay. freeAddr picks every address the chain
// listens on, now and in EnableAdmin: a func so that callers running several chains at once
// keep them apart.
func New(root, dir, bin string, freeAddr func() (string, error)) (*Chain, error) {
	return newChain(root, dir, bin, freeAddr, "")
}

// NewCluster prepares a cluster chain (the roles of make demo-cluster): two public proxy
// instances (Public, PublicB) sharing their announcements through the Redis at redisAddr, two
// private proxies (Private, PrivateB), their nodes, each delivering to both, and the internal
// server. The names of All keep their meaning; StartAll starts ClusterAll.
func NewCluster(root, dir, bin string, freeAddr func() (string, error), redisAddr string) (*Chain, error) {
	return newChain(root, dir, bin, freeAddr, redisAddr)
}

func newChain(root, dir, bin string, freeAddr func() (string, error), redisAddr string) (*Chain, error) {
	c := &Chain{Dir: dir, Bin: bin, Env: map[string][]string{}, Args: map[string][]string{}, freeAddr: freeAddr,
		cluster: redisAddr != "", redis: redisAddr,
		procs: map[string]*exec.Cmd{}, waits: map[string]chan error{}, admin: map[string]string{}}
	for _, p := range []*string{&c.Ports.PublicTLS, &c.Ports.PublicInternal, &c.Ports.PublicEPS, &c.Ports.PublicNodePeer, &c.Ports.PublicNodeLocal,
		&c.Ports.PrivateEPS, &c.Ports.PrivateNodePeer, &c.Ports.PrivateNodeLocal, &c.Ports.Internal,
		&c.Ports.OtherNodePeer, &c.Ports.OtherNodeLocal,
		&c.Ports.PublicTLSB, &c.Ports.PublicInternalB, &c.Ports.PublicEPSB, &c.Ports.PrivateEPSB} {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		*p = a
	}
	if err := copyTree(filepath.Join(root, "settings", "dev"), filepath.Join(dir, "settings", "dev")); err != nil {
		return nil, err
	}
	certs := filepath.Join(dir, "settings", "dev", "certs")
	if err := os.MkdirAll(certs, 0o755); err != nil {
		return nil, err
	}
	if _, err := pki.DevLayout(certs, nil).Write(); err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(filepath.Join(certs, pki.RootCertFile))
	if err != nil {
		return nil, err
	}
	c.Roots = x509.NewCertPool()
	c.Roots.AppendCertsFromPEM(pem)
	return c, c.writeOverlay()
}

// writeOverlay adds a 999_ports.yml to every role and to the directory.
func (c *Chain) writeOverlay() error {
	p := c.Ports
	files := map[string]string{
		"directory": fmt.Sprintf("operators:\n  public-proxy-1.ga: {node: {address: %q}}\n  private-proxy-1.ga: {node: {address: %q}}\n  other-operator.ga: {node: {address: %q}}\n",
			p.PublicNodePeer, p.PrivateNodePeer, p.OtherNodePeer),
		"roles/other-operator-eps-1": fmt.Sprintf("peer: {bind: %q}\nlocal: {bind: %q}\n", p.OtherNodePeer, p.OtherNodeLocal),
		"roles/public-proxy-eps-1":   fmt.Sprintf("peer: {bind: %q}\nlocal: {bind: %q}\nservice: {endpoint: %q}\n", p.PublicNodePeer, p.PublicNodeLocal, "https://"+p.PublicEPS+"/jsonrpc"),
		"roles/private-proxy-eps-1":  fmt.Sprintf("peer: {bind: %q}\nlocal: {bind: %q}\nservice: {endpoint: %q}\n", p.PrivateNodePeer, p.PrivateNodeLocal, "https://"+p.PrivateEPS+"/jsonrpc"),
		"roles/public-proxy-1": fmt.Sprintf("eps: {node: %q, listen: %q}\npublic: {tls_bind: %q, internal_bind: %q, internal_endpoint: %q}\n",
			"https://"+p.PublicNodeLocal+"/jsonrpc", p.PublicEPS, p.PublicTLS, p.PublicInternal, p.PublicInternal),
		"roles/private-proxy-1": fmt.Sprintf("eps: {node: %q, listen: %q}\nprivate: {internal_endpoint: %q, endpoints: {public-proxy-1.ga: %q}}\n",
			"https://"+p.PrivateNodeLocal+"/jsonrpc", p.PrivateEPS, p.Internal, p.PublicInternal),
	}
	url := func(addr string) string { return "https://" + addr + "/jsonrpc" }
	files["roles/cluster-public-proxy-eps-1"] = fmt.Sprintf("peer: {bind: %q}\nlocal: {bind: %q}\nservice: {endpoints: [%q, %q]}\n",
		p.PublicNodePeer, p.PublicNodeLocal, url(p.PublicEPS), url(p.PublicEPSB))
	files["roles/cluster-private-proxy-eps-1"] = fmt.Sprintf("peer: {bind: %q}\nlocal: {bind: %q}\nservice: {endpoints: [%q, %q]}\n",
		p.PrivateNodePeer, p.PrivateNodeLocal, url(p.PrivateEPS), url(p.PrivateEPSB))
	for role, ports := range map[string][3]string{"cluster-public-proxy-1a": {p.PublicEPS, p.PublicTLS, p.PublicInternal}, "cluster-public-proxy-1b": {p.PublicEPSB, p.PublicTLSB, p.PublicInternalB}} {
		files["roles/"+role] = fmt.Sprintf("eps: {node: %q, listen: %q}\npublic: {tls_bind: %q, internal_bind: %q, internal_endpoint: %q, redis: {addr: %q}}\n",
			url(p.PublicNodeLocal), ports[0], ports[1], ports[2], ports[2], cmp.Or(c.redis, "127.0.0.1:6379"))
	}
	for role, listen := range map[string]string{"cluster-private-proxy-1a": p.PrivateEPS, "cluster-private-proxy-1b": p.PrivateEPSB} {
		files["roles/"+role] = fmt.Sprintf("eps: {node: %q, listen: %q}\nprivate: {internal_endpoint: %q}\n", url(p.PrivateNodeLocal), listen, p.Internal)
	}
	// The dev roles bind fixed admin ports (9100 and up), which chains running side by side must
	// never take: every role's listener is off here, and on at a free address only for the
	// processes EnableAdmin names (its environment variable wins over the files). An overlay a
	// test writes later may still set it, as a user's file would.
	roles, err := os.ReadDir(filepath.Join(c.Dir, "settings", "dev", "roles"))
	if err != nil {
		return err
	}
	for _, r := range roles {
		if r.IsDir() {
			files["roles/"+r.Name()] += "admin: {bind: \"\"}\n"
		}
	}
	for sub, body := range files {
		path := filepath.Join(c.Dir, "settings", "dev", sub, "999_ports.yml")
		if err := os.WriteFile(path, []byte("# written by internal/chain for a test run\n"+body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteOverlay adds one settings file to the copy: sub is a directory under settings/dev (for
// example "roles/private-proxy-1") and file a plain *.yml name. A directory loads its files in
// name order, so a name sorting after 999_ports.yml overrides the dev settings and the ports
// (mappings merge key by key; lists are replaced whole). Call it before starting the process
// that reads the directory; not safe concurrently with Start of that process.
func (c *Chain) WriteOverlay(sub, file, body string) error {
	if file != filepath.Base(file) || !strings.HasSuffix(file, ".yml") || strings.HasPrefix(file, ".") {
		return fmt.Errorf("overlay file %q: want a plain *.yml name", file)
	}
	if filepath.IsAbs(sub) || sub != filepath.Clean(sub) || sub == "." || strings.HasPrefix(sub, "..") {
		return fmt.Errorf("overlay directory %q: want a directory under settings/dev", sub)
	}
	dir := filepath.Join(c.Dir, "settings", "dev", sub)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("overlay directory %q: not in the settings copy", sub)
	}
	return os.WriteFile(filepath.Join(dir, file), []byte("# written by internal/chain for a run\n"+body), 0o644)
}

// launch is how a settings-driven process starts: its command, and the variable naming its
// settings role.
type launch struct {
	bin         string
	args        []string
	settingsVar string
	role        string
}

var launches = map[string]launch{
	Public:     {"proxy", []string{"run", "public"}, "PROXY_SETTINGS", "public-proxy-1"},
	Private:    {"proxy", []string{"run", "private"}, "PROXY_SETTINGS", "private-proxy-1"},
	PublicEPS:  {"eps", []string{"server", "run"}, "EPS_SETTINGS", "public-proxy-eps-1"},
	PrivateEPS: {"eps", []string{"server", "run"}, "EPS_SETTINGS", "private-proxy-eps-1"},
	OtherEPS:   {"eps", []string{"server", "run"}, "EPS_SETTINGS", "other-operator-eps-1"},
}

// clusterRoles are the settings roles of a cluster chain's processes.
var clusterRoles = map[string]string{
	Public: "cluster-public-proxy-1a", PublicB: "cluster-public-proxy-1b",
	Private: "cluster-private-proxy-1a", PrivateB: "cluster-private-proxy-1b",
	PublicEPS: "cluster-public-proxy-eps-1", PrivateEPS: "cluster-private-proxy-eps-1",
	OtherEPS: "other-operator-eps-1",
}

// launch returns how a settings-driven process of this chain starts.
func (c *Chain) launch(name string) (launch, bool) {
	base := map[string]string{PublicB: Public, PrivateB: Private}
	l, ok := launches[cmp.Or(base[name], name)]
	if !ok {
		return launch{}, false
	}
	if c.cluster {
		role, ok := clusterRoles[name]
		if !ok {
			return launch{}, false
		}
		l.role = role
	} else if base[name] != "" {
		return launch{}, false
	}
	return l, true
}

// all is the chain's process list in start order.
func (c *Chain) all() []string {
	if c.cluster {
		return ClusterAll
	}
	return All
}

// Command returns a process's command line and environment without starting it, for a caller
// that runs it itself (with settings that must make it fail, say). Its output goes nowhere
// until the caller sets Stdout and Stderr. Not safe concurrently with changes to Env or Args.
func (c *Chain) Command(name string) (*exec.Cmd, error) {
	dev := filepath.Join(c.Dir, "settings", "dev")
	var cmd *exec.Cmd
	if name == Internal {
		cmd = exec.Command(filepath.Join(c.Bin, "internal-server"), "-addr", c.Ports.Internal,
			"-cert", filepath.Join(dev, "certs", "internal-server.crt"), "-key", filepath.Join(dev, "certs", "internal-server.key"))
	} else {
		l, ok := c.launch(name)
		if !ok {
			return nil, fmt.Errorf("no process %q", name)
		}
		cmd = exec.Command(filepath.Join(c.Bin, l.bin), l.args...)
		cmd.Env = append(os.Environ(), l.settingsVar+"="+filepath.Join(dev, "roles", l.role))
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, c.Env[name]...)
	cmd.Args = append(cmd.Args, c.Args[name]...)
	if v, addr := adminEnv[name], c.AdminAddr(name); addr != "" {
		cmd.Env = append(cmd.Env, v+"="+addr) // last, so it wins over Env
	}
	cmd.Dir = c.Dir
	return cmd, nil
}

// Start starts one process; its output goes to Dir/<name>.log.
func (c *Chain) Start(name string) error {
	cmd, err := c.Command(name)
	if err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	c.mu.Lock()
	c.procs[name], c.waits[name] = cmd, done
	c.mu.Unlock()
	return nil
}

// StartAll starts every process.
func (c *Chain) StartAll() error {
	for _, n := range c.all() {
		if err := c.Start(n); err != nil {
			c.StopAll(5 * time.Second)
			return err
		}
	}
	return nil
}

// Pid of a running process (0 when not running).
func (c *Chain) Pid(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cmd := c.procs[name]; cmd != nil {
		return cmd.Process.Pid
	}
	return 0
}

// Stop sends SIGTERM and waits up to grace, then kills. It returns the exit error (nil for a
// clean exit 0).
func (c *Chain) Stop(name string, grace time.Duration) error {
	return c.signal(name, syscall.SIGTERM, grace)
}

// Kill sends SIGKILL and waits for the process. Its exit error says only that it was killed, so
// there is nothing to return.
func (c *Chain) Kill(name string) {
	_ = c.signal(name, syscall.SIGKILL, 5*time.Second)
}

func (c *Chain) signal(name string, sig syscall.Signal, grace time.Duration) error {
	c.mu.Lock()
	cmd, done := c.procs[name], c.waits[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %v of %v", name, grace, sig)
	}
}

// StopAll stops every running process, the proxies first.
func (c *Chain) StopAll(grace time.Duration) error {
	var errs []error
	for _, n := range append([]string{OtherEPS}, reversed(c.all())...) {
		if err := c.Stop(n, grace); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Call runs `eps call` through the node of a process (PublicEPS, PrivateEPS or OtherEPS) and
// returns its output.
func (c *Chain) Call(ctx context.Context, node, method, params string) (string, error) {
	l, ok := c.launch(node)
	if !ok || l.bin != "eps" {
		return "", fmt.Errorf("no node %q", node)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.Bin, "eps"), "call", method, params)
	cmd.Env = append(os.Environ(), l.settingsVar+"="+filepath.Join(c.Dir, "settings", "dev", "roles", l.role))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// Log returns the log of a process so far.
func (c *Chain) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, name+".log"))
	return string(b)
}

// HTTPClient is a TLS client that dials addr whatever the URL's host, as curl's --resolve does:
// a request for https://Domain/ reaches the public proxy with Domain as its server name. It
// opens one connection per request unless keepAlive.
func (c *Chain) HTTPClient(addr string, keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: c.Roots},
			DisableKeepAlives: !keepAlive,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		},
	}
}

// WaitReady polls GET https://Domain/jsonrpc through the public proxy (each instance, in a
// cluster chain) until it answers 200 (the whole chain is up and the private proxy's
// announcement went through) or ctx ends.
func (c *Chain) WaitReady(ctx context.Context) error {
	if err := c.WaitReadyAt(ctx, c.Ports.PublicTLS); err != nil || !c.cluster {
		return err
	}
	return c.WaitReadyAt(ctx, c.Ports.PublicTLSB)
}

// WaitReadyAt is WaitReady through the public TLS address addr.
func (c *Chain) WaitReadyAt(ctx context.Context, addr string) error {
	cl := c.HTTPClient(addr, false)
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+Domain+"/jsonrpc", nil)
		resp, err := cl.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("the chain did not answer at %s: %v", addr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// copyTree copies a directory tree of small files, skipping generated certs and data.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel == "certs" || rel == "data" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

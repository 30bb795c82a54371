package harness

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"epsproxy/bench/backend"
	"epsproxy/bench/haproxy"
	"epsproxy/bench/load"
	"epsproxy/internal/chain"
	"epsproxy/internal/proc"
)

// Names the private proxy announces for the benchmark, besides chain.Domain (the demo's name,
// served by the internal server). Both sit under the dev directory's allowed suffix.
const (
	BulkName = "bulk.internal-server.local" // the TLS bulk backend
	RawName  = "raw.internal-server.local"  // the raw TCP backend
)

// Target names.
const (
	TargetChain    = "chain"
	TargetDirect   = "direct"
	TargetHAProxy1 = "haproxy-1hop"
	TargetHAProxy2 = "haproxy-2hop"
)

// Names of the watched processes that internal/chain does not start; the chain's own go by
// its names (chain.Public, chain.Internal, ...).
const (
	ProcHAProxyA = "haproxy-a" // the one hop, and the second of two
	ProcHAProxyB = "haproxy-b" // the first of two hops
	ProcHarness  = "harness"   // this process: the clients and the bulk backends
)

// ChainProcs are the four processes a relayed connection costs (the internal server is the
// backend, measured too but not part of the chain's cost).
var ChainProcs = []string{chain.Public, chain.Private, chain.PublicEPS, chain.PrivateEPS}

// adminProcs are the processes whose /debug/stats the harness reads and records.
var adminProcs = []string{chain.Public, chain.Private}

// target is where one kind of load goes.
type target struct {
	name     string
	tlsAddr  string   // the demo's name (internal server)
	bulkAddr string   // BulkName (TLS bulk backend)
	rawAddr  string   // RawName (raw TCP backend)
	procs    []string // the proxy processes this target adds (none for direct)
}

// Timeouts of the setup.
const (
	readyTimeout = 60 * time.Second
	stopGrace    = 40 * time.Second // above the dev drain_timeout (30 s)
)

// env is everything a run started.
type env struct {
	o     Options
	plan  Plan
	log   io.Writer
	out   string
	bin   string
	work  string
	res   *Results
	ch    *chain.Chain
	env   map[string][]string // the chain's environment, restored when a proxy restarts
	bulk  *backend.Server     // TLS
	raw   *backend.Server
	hello []byte // the ClientHello record for RawName

	connTLS, bulkTLS *tls.Config

	ha      map[string]*haproxy.Process
	targets []target
	pids    map[string]func() int
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "bench %5.1fs: "+format+"\n", append([]any{time.Since(e.res.Started).Seconds()}, args...)...)
}

// freeAddr returns a free loopback address (the port is released for the caller to bind).
var freeAddr = chain.FreeAddr

// setup builds, starts the chain, the backends and HAProxy, and checks every path answers.
func setup(ctx context.Context, o Options, plan Plan, res *Results) (*env, error) {
	e := &env{o: o, plan: plan, log: o.Log, res: res, ha: map[string]*haproxy.Process{}}
	var err error
	if e.out, err = filepath.Abs(o.Out); err != nil {
		return nil, err
	}
	e.bin = filepath.Join(e.out, "bin")
	if err := os.MkdirAll(e.bin, 0o755); err != nil {
		return nil, err
	}
	if lim, err := proc.RaiseNoFile(); err != nil {
		e.logf("could not raise RLIMIT_NOFILE: %v", err)
	} else if lim < 2*uint64(plan.IdleConns)+1000 {
		e.logf("RLIMIT_NOFILE is %d: the idle scenario's %d connections may not fit", lim, plan.IdleConns)
	}
	if e.work, err = os.MkdirTemp("", "epsproxy-bench-"); err != nil {
		return nil, err
	}
	root := o.Root
	if root == "" {
		if root, err = chain.RepoRoot(); err != nil {
			return e, err
		}
	}
	e.logf("building the commands into %s", e.bin)
	if err := chain.Build(root, e.bin); err != nil {
		return e, err
	}
	if e.ch, err = chain.New(root, e.work, e.bin, freeAddr); err != nil {
		return e, err
	}
	certs := filepath.Join(e.work, "settings", "dev", "certs")
	cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "internal-server.crt"), filepath.Join(certs, "internal-server.key"))
	if err != nil {
		return e, err
	}
	if e.bulk, err = backend.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}); err != nil {
		return e, err
	}
	if e.raw, err = backend.Listen("127.0.0.1:0", nil); err != nil {
		return e, err
	}
	// No session cache: every connection must be a full handshake.
	e.connTLS = &tls.Config{RootCAs: e.ch.Roots, ServerName: chain.Domain}
	e.bulkTLS = &tls.Config{RootCAs: e.ch.Roots, ServerName: BulkName}
	if e.hello, err = load.ClientHelloRecord(&tls.Config{RootCAs: e.ch.Roots, ServerName: RawName}); err != nil {
		return e, err
	}
	overlay := fmt.Sprintf("private:\n  announce:\n"+
		"    - {domain: %q, proxy: \"public-proxy-1.ga\"}\n"+
		"    - {domain: %q, proxy: \"public-proxy-1.ga\", target: %q}\n"+
		"    - {domain: %q, proxy: \"public-proxy-1.ga\", target: %q}\n",
		chain.Domain, BulkName, e.bulk.Addr(), RawName, e.raw.Addr())
	if err := e.ch.WriteOverlay("roles/private-proxy-1", "999_zz_bench.yml", overlay); err != nil {
		return e, err
	}
	for _, p := range adminProcs {
		if err := e.ch.EnableAdmin(p); err != nil {
			return e, err
		}
	}
	// Warn-level logs: a log line per connection would dominate what we measure.
	e.env = map[string][]string{
		chain.Public:     {"PROXY_LOG_LEVEL=warn"},
		chain.Private:    {"PROXY_LOG_LEVEL=warn"},
		chain.PublicEPS:  {"EPS_LOG_LEVEL=warn"},
		chain.PrivateEPS: {"EPS_LOG_LEVEL=warn"},
	}
	for n, v := range e.env {
		e.ch.Env[n] = v
	}
	e.logf("starting the chain (settings copy in %s)", e.work)
	if err := e.ch.StartAll(); err != nil {
		return e, err
	}
	if err := e.waitChain(ctx); err != nil {
		return e, err
	}
	// A func per process: a restarted proxy has a new pid.
	e.pids = map[string]func() int{ProcHarness: os.Getpid}
	for _, n := range chain.All {
		e.pids[n] = func() int { return e.ch.Pid(n) }
	}
	res.Processes = map[string]string{
		chain.Public: "the public proxy", chain.Private: "the private proxy",
		chain.PublicEPS: "the public proxy's EPS node", chain.PrivateEPS: "the private proxy's EPS node",
		chain.Internal: "the demo internal server (the backend of the demo's name)",
		ProcHarness:    "this harness: the load generator and the bulk backends",
	}
	e.targets = []target{
		{name: TargetChain, tlsAddr: e.ch.Ports.PublicTLS, bulkAddr: e.ch.Ports.PublicTLS, rawAddr: e.ch.Ports.PublicTLS, procs: ChainProcs},
		{name: TargetDirect, tlsAddr: e.ch.Ports.Internal, bulkAddr: e.bulk.Addr(), rawAddr: e.raw.Addr()},
	}
	if err := e.startHAProxy(ctx); err != nil {
		res.HAProxy = "skipped: " + err.Error()
		res.Skipped = append(res.Skipped, "HAProxy comparison: "+err.Error())
		e.logf("HAProxy skipped: %v", err)
	}
	return e, nil
}

// waitChain waits until the demo's name answers through the chain and the bulk names stream.
func (e *env) waitChain(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := e.ch.WaitReady(rctx); err != nil {
		return err
	}
	return e.probe(rctx, e.ch.Ports.PublicTLS, e.ch.Ports.PublicTLS)
}

// probe retries a short download of each bulk name until bytes arrive or ctx ends.
func (e *env) probe(ctx context.Context, bulkAddr, rawAddr string) error {
	for _, cfg := range []load.BulkConfig{
		{Addr: bulkAddr, TLS: e.bulkTLS, Streams: 1, Timeout: 5 * time.Second},
		{Addr: rawAddr, Hello: e.hello, Streams: 1, Timeout: 5 * time.Second},
	} {
		var last error
		for {
			b, err := load.StartBulk(ctx, cfg)
			if err == nil {
				deadline := time.Now().Add(5 * time.Second)
				for b.Received() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
					time.Sleep(10 * time.Millisecond)
				}
				got := b.Received()
				err = b.Stop()
				if got > 0 {
					break
				}
				if err == nil {
					err = errors.New("no bytes")
				}
			}
			last = err
			select {
			case <-ctx.Done():
				name := BulkName
				if cfg.TLS == nil {
					name = RawName
				}
				return fmt.Errorf("%s through %s does not stream: %v", name, cfg.Addr, last)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// startHAProxy starts HAProxy A (one hop to the backends) and B (in front of A: two hops).
func (e *env) startHAProxy(ctx context.Context) error {
	if e.o.NoHAProxy {
		return errors.New("turned off (-haproxy=false)")
	}
	bin, err := haproxy.Ensure(ctx, e.log)
	if err != nil {
		return err
	}
	e.res.HAProxy = haproxy.Version(bin)
	bindA, err := freeAddr()
	if err != nil {
		return err
	}
	bindB, err := freeAddr()
	if err != nil {
		return err
	}
	routes := func(tls, bulk, raw string) []haproxy.Route {
		return []haproxy.Route{{SNI: chain.Domain, Addr: tls}, {SNI: BulkName, Addr: bulk}, {SNI: RawName, Addr: raw}}
	}
	a, err := haproxy.Start(ctx, bin, e.work, ProcHAProxyA, haproxy.Config{Bind: bindA, Routes: routes(e.ch.Ports.Internal, e.bulk.Addr(), e.raw.Addr())})
	if err != nil {
		return err
	}
	e.ha[ProcHAProxyA] = a
	b, err := haproxy.Start(ctx, bin, e.work, ProcHAProxyB, haproxy.Config{Bind: bindB, Routes: routes(bindA, bindA, bindA)})
	if err != nil {
		return err
	}
	e.ha[ProcHAProxyB] = b
	for _, addr := range []string{bindA, bindB} {
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := e.probe(pctx, addr, addr)
		cancel()
		if err != nil {
			return fmt.Errorf("HAProxy does not route: %w", err)
		}
	}
	e.pids[ProcHAProxyA], e.pids[ProcHAProxyB] = a.Pid, b.Pid
	e.res.Processes[ProcHAProxyA] = "HAProxy: the one-hop target, and the second hop of two"
	e.res.Processes[ProcHAProxyB] = "HAProxy: the first hop of the two-hop target"
	e.targets = append(e.targets,
		target{name: TargetHAProxy1, tlsAddr: bindA, bulkAddr: bindA, rawAddr: bindA, procs: []string{ProcHAProxyA}},
		target{name: TargetHAProxy2, tlsAddr: bindB, bulkAddr: bindB, rawAddr: bindB, procs: []string{ProcHAProxyB, ProcHAProxyA}},
	)
	return nil
}

// restartProxy restarts a proxy of the chain with extra environment (the profile switch) and
// waits for the chain to answer again. The announcements survive: the proxies restore them at
// start.
func (e *env) restartProxy(ctx context.Context, name string, extra ...string) error {
	if err := e.ch.Stop(name, stopGrace); err != nil {
		return fmt.Errorf("stopping the %s: %w", name, err)
	}
	e.ch.Env[name] = append(append([]string(nil), e.env[name]...), extra...)
	if err := e.ch.Start(name); err != nil {
		return err
	}
	return e.waitChain(ctx)
}

// teardown stops everything setup started, keeps the logs in out/logs and removes the work dir.
func (e *env) teardown() {
	for _, name := range []string{ProcHAProxyB, ProcHAProxyA} {
		if p := e.ha[name]; p != nil {
			if err := p.Stop(5 * time.Second); err != nil {
				e.logf("%v", err)
			}
		}
	}
	if e.ch != nil {
		if err := e.ch.StopAll(stopGrace); err != nil {
			e.logf("stopping the chain: %v", err)
		}
	}
	for _, s := range []*backend.Server{e.bulk, e.raw} {
		if s != nil {
			s.Close()
		}
	}
	if e.work == "" {
		return
	}
	logs := filepath.Join(e.out, "logs")
	if err := os.MkdirAll(logs, 0o755); err == nil {
		matches, _ := filepath.Glob(filepath.Join(e.work, "*.log"))
		for _, m := range matches {
			if b, err := os.ReadFile(m); err == nil {
				_ = os.WriteFile(filepath.Join(logs, filepath.Base(m)), b, 0o644)
			}
		}
	}
	_ = os.RemoveAll(e.work)
}

// logTails returns the last lines of every chain log, for an error report.
func (e *env) logTails() string {
	if e.ch == nil {
		return ""
	}
	var b strings.Builder
	for _, n := range chain.All {
		log := strings.TrimSpace(e.ch.Log(n))
		if log == "" {
			continue
		}
		lines := strings.Split(log, "\n")
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", n, strings.Join(lines, "\n"))
	}
	return b.String()
}

// cpuSnapshot reads the CPU time of every watched process.
func (e *env) cpuSnapshot() map[string]time.Duration {
	out := make(map[string]time.Duration, len(e.pids))
	for name, pid := range e.pids {
		if p := pid(); p > 0 {
			if d, err := proc.ReadCPU(p); err == nil {
				out[name] = d
			}
		}
	}
	return out
}

// switchSnapshot reads the context switches of every watched process.
func (e *env) switchSnapshot() map[string]int64 {
	out := make(map[string]int64, len(e.pids))
	for name, pid := range e.pids {
		if p := pid(); p > 0 {
			if n, err := proc.ReadSwitches(p); err == nil {
				out[name] = n
			}
		}
	}
	return out
}

// delta is after - before for processes present in both whose figure did not drop (a
// restarted process, or one whose thread exited, is left out).
func delta[T time.Duration | int64](before, after map[string]T) map[string]T {
	out := map[string]T{}
	for n, a := range after {
		if b, ok := before[n]; ok && a >= b {
			out[n] = a - b
		}
	}
	return out
}

// saveAdmin records the proxies' /debug/stats under label in the results.
func (e *env) saveAdmin(ctx context.Context, label string) {
	if e.res.Admin == nil {
		e.res.Admin = map[string]json.RawMessage{}
	}
	for _, p := range adminProcs {
		if st, err := e.ch.Stats(ctx, p); err == nil {
			e.res.Admin[label+"/"+p] = st.Raw
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rotate returns ts rotated left by k, so each repetition starts with a different target.
func rotate[T any](ts []T, k int) []T {
	if len(ts) == 0 {
		return ts
	}
	k %= len(ts)
	return append(append([]T(nil), ts[k:]...), ts[:k]...)
}

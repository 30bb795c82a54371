package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"epsproxy/engine"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/pki"
	"epsproxy/internal/testnet"
	"epsproxy/matcher"
	"epsproxy/proxy"
)

// The deployment's own paths: the examples and units name them, and the tests move only
// /etc/epsproxy into a temporary root.
const (
	etcDir = "/etc/epsproxy"
	binDir = "/usr/local/bin/"
)

// service is one long-running process of a deployment: its unit, and the settings and
// command the unit runs.
type service struct {
	unit     string // file under systemd/
	instance string // for a template unit (name@.service)
	bin      string // command under /usr/local/bin
	args     string // ExecStart's arguments
	envVar   string // the variable naming the settings
	settings string // the settings directory under etc/epsproxy
	role     string // what `proxy check` reports: "public" or "private"; "" for a node
	node     string // for a proxy: the settings directory of its EPS node
	// caps is the one capability the process has: CAP_NET_BIND_SERVICE for the public proxy,
	// which binds 443; nothing for the others.
	caps string
}

var services = []service{
	{unit: "proxy-public.service", bin: "proxy", args: "run public", envVar: "PROXY_SETTINGS", settings: "proxy-public", role: "public", node: "eps-node-public", caps: "CAP_NET_BIND_SERVICE"},
	{unit: "proxy-private.service", bin: "proxy", args: "run private", envVar: "PROXY_SETTINGS", settings: "proxy-private", role: "private", node: "eps-node-private"},
	{unit: "eps-node@.service", instance: "public", bin: "eps", args: "server run", envVar: "EPS_SETTINGS", settings: "eps-node-public"},
	{unit: "eps-node@.service", instance: "private", bin: "eps", args: "server run", envVar: "EPS_SETTINGS", settings: "eps-node-private"},
}

// name is the unit's name as systemctl knows it.
func (s service) name() string {
	if s.instance == "" {
		return s.unit
	}
	return strings.Replace(s.unit, "@", "@"+s.instance, 1)
}

// TestExamplesPassCheck runs `proxy check` and `eps check` on every example, as its unit runs
// it (the unit's variable, the settings directory it names), in a copy where /etc/epsproxy is
// a temporary directory holding a CA and the operators' certificates made here, and the
// certificate pins are those certificates' fingerprints. Everything else is the committed
// files: a key misspelt or out of range in any of them fails here.
func TestExamplesPassCheck(t *testing.T) {
	bins := buildCommands(t)
	root := install(t, true, nil)
	for _, s := range services {
		code, out, errOut := check(t, bins, root, s)
		name := settingsOf(t, s.settings)["name"]
		if code != 0 || errOut != "" || strings.Count(out, "\n") != 0 || !strings.Contains(out, "valid") || !strings.Contains(out, fmt.Sprint(name)) {
			t.Errorf("%s check of %s: exit %d, stdout %q, stderr %q; want 0 and one line saying the settings of %v are valid", s.bin, s.settings, code, out, errOut, name)
		} else if s.role != "" && !strings.Contains(out, "("+s.role+")") {
			t.Errorf("proxy check of %s: %q does not report the %s role alone", s.settings, out, s.role)
		}
	}
}

// TestBrokenExamplesFailCheck proves that the check above reads the committed files: a
// misspelt key in any of them, or a pin placeholder left as shipped, makes the check fail with
// one line naming the file and the key.
func TestBrokenExamplesFailCheck(t *testing.T) {
	bins := buildCommands(t)
	typo := func(file, from, to string) func(string, string) string {
		return func(rel, body string) string {
			if rel != file {
				return body
			}
			if !strings.Contains(body, from) {
				t.Fatalf("%s has no %q to misspell", file, from)
			}
			return strings.Replace(body, from, to, 1)
		}
	}
	type probe struct {
		s         service
		file, key string // what the one line must name
	}
	type broken struct {
		what   string
		pins   bool // fill in the pins (else they stay as shipped)
		mutate func(rel, body string) string
		probes []probe
	}
	cases := []broken{
		{what: "pins left as shipped", pins: false, probes: []probe{
			{services[0], "proxy-public/001_settings.yml", `"eps.pins[0]"`},
			{services[1], "proxy-private/001_settings.yml", `"eps.pins[0]"`},
			// The directory's own checks (eps/directory.New) name the key but not the file.
			{services[2], "directory", `certificates[0]"`},
			{services[3], "directory", `certificates[0]"`},
		}},
		{what: "directory key misspelt", pins: true, mutate: typo("directory/001_operators.yml", "    groups:", "    grups:"), probes: []probe{
			{services[2], "directory/001_operators.yml", `.grups"`},
			{services[3], "directory/001_operators.yml", `.grups"`},
		}},
	}
	for _, s := range services {
		file := s.settings + "/001_settings.yml"
		cases = append(cases, broken{what: file + " key misspelt", pins: true, mutate: typo(file, "  key_file:", "  key_fil:"),
			probes: []probe{{s, file, `"tls.key_fil"`}}})
	}
	for _, c := range cases {
		root := install(t, c.pins, c.mutate)
		for _, p := range c.probes {
			code, _, errOut := check(t, bins, root, p.s)
			if code != 1 || strings.Count(errOut, "\n") != 0 || !strings.Contains(errOut, p.file) || !strings.Contains(errOut, p.key) {
				t.Errorf("%s: %s check of %s: exit %d, stderr %q; want 1 and one line naming %s and %s", c.what, p.s.bin, p.s.settings, code, errOut, p.file, p.key)
			}
		}
	}
}

// TestUnits checks the units against what a production host needs and against the example
// settings they run: a dedicated user, enough descriptors for the proxy's max_pairs, no new
// privileges, CAP_NET_BIND_SERVICE on the public proxy only (the one process that binds a
// port below 1024), a read-only system where only the data directory is writable, restart on
// failure, a reload that checks the settings before SIGHUP, and the binary and settings
// directory the deployment installs.
func TestUnits(t *testing.T) {
	entries, err := os.ReadDir("systemd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.ContainsFunc(services, func(s service) bool { return s.unit == e.Name() }) {
			t.Errorf("systemd/%s is not in this test's list of services", e.Name())
		}
	}
	for _, s := range services {
		u := readUnit(t, filepath.Join("systemd", s.unit), s.instance)
		ex := settingsOf(t, s.settings)
		want := map[string]string{
			"Service.NoNewPrivileges": "yes",
			"Service.ProtectSystem":   "strict",
			"Service.ProtectHome":     "yes",
			"Service.PrivateTmp":      "yes",
			"Service.Restart":         "on-failure",
			"Service.ExecStart":       binDir + s.bin + " " + s.args,
			"Install.WantedBy":        "multi-user.target",
		}
		for key, v := range want {
			if got := u.one(t, key); got != v {
				t.Errorf("%s: %s=%s, want %s", s.name(), key, got, v)
			}
		}
		for _, key := range []string{"Service.User", "Service.Group"} {
			if v := u.one(t, key); v == "" || v == "root" || v == "0" {
				t.Errorf("%s: %s=%q, want a dedicated user and group", s.name(), key, v)
			}
		}
		if env := s.envVar + "=" + etcDir + "/" + s.settings; !slices.Contains(u.all("Service.Environment"), env) {
			t.Errorf("%s: no Environment=%s (has %q)", s.name(), env, u.all("Service.Environment"))
		}
		if got, want := u.all("Service.ExecReload"), []string{binDir + s.bin + " check", "/bin/kill -HUP $MAINPID"}; !slices.Equal(got, want) {
			t.Errorf("%s: ExecReload %q, want %q: check the settings, then SIGHUP", s.name(), got, want)
		}

		// Descriptors: a proxy's relayed client holds up to 4, a connection in the hello or
		// pending phase one; a node has two listeners of jsonrpc.MaxConns each.
		limit, err := strconv.Atoi(u.one(t, "Service.LimitNOFILE"))
		if err != nil {
			t.Errorf("%s: LimitNOFILE: %v", s.name(), err)
		}
		need := 2 * jsonrpc.MaxConns
		if s.role != "" {
			block, _ := ex[s.role].(map[string]any)
			need = 4 * intOr(block, "max_pairs", proxy.DefaultMaxPairs)
			if s.role == "public" {
				need += intOr(block, "max_hello_conns", engine.DefaultMaxHelloConns) + intOr(block, "max_pending", engine.DefaultMaxPending)
			}
		}
		if limit < need {
			t.Errorf("%s: LimitNOFILE=%d is below the %d its settings need", s.name(), limit, need)
		}

		// Capabilities: exactly the one the process needs, and only where a port below 1024 is
		// bound.
		low := false
		for _, addr := range binds(ex) {
			if _, port, err := net.SplitHostPort(addr); err == nil {
				if n, _ := strconv.Atoi(port); n < 1024 {
					low = true
				}
			}
		}
		if low != (s.caps != "") {
			t.Errorf("%s: binds a port below 1024: %v; has a capability: %v", s.name(), low, s.caps != "")
		}
		if got := u.one(t, "Service.CapabilityBoundingSet"); got != s.caps {
			t.Errorf("%s: CapabilityBoundingSet=%s, want %q", s.name(), got, s.caps)
		}
		if got := strings.Join(u.all("Service.AmbientCapabilities"), " "); got != s.caps {
			t.Errorf("%s: AmbientCapabilities=%s, want %q", s.name(), got, s.caps)
		}
		if s.caps == "" && bytes.Contains(u.raw, []byte("CAP_")) {
			t.Errorf("%s names a capability; it must have none", s.name())
		}

		// Writable: the proxy's data directory and nothing else; a node writes nothing.
		var rw []string
		for _, v := range u.all("Service.ReadWritePaths") {
			rw = append(rw, strings.Fields(v)...)
		}
		wantRW := []string(nil)
		if d, ok := ex["data_dir"].(string); ok {
			wantRW = []string{d}
		}
		if !slices.Equal(rw, wantRW) {
			t.Errorf("%s: ReadWritePaths %q, want %q (the data_dir of its settings)", s.name(), rw, wantRW)
		}
	}
}

// TestUnitsVerify runs systemd-analyze verify on the units where it is installed: no warning
// at all (verify reports unknown keys and bad values as warnings). The binaries are stand-ins,
// since verify checks that ExecStart names an executable; TestUnits checks the real paths.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	must(t, os.Mkdir(bin, 0o755))
	for _, b := range []string{"proxy", "eps"} {
		must(t, os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755))
	}
	verify := func(files ...string) (string, error) {
		cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, files...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	// This machine must be able to verify a unit at all (a container may lack the system
	// units verify loads).
	must(t, os.WriteFile(filepath.Join(dir, "baseline.service"), []byte("[Service]\nExecStart="+filepath.Join(bin, "eps")+"\n"), 0o644))
	if out, err := verify("baseline.service"); err != nil || out != "" {
		t.Skipf("systemd-analyze verify cannot verify a minimal unit here: %v %s", err, out)
	}
	var names []string
	for _, s := range services {
		body, err := os.ReadFile(filepath.Join("systemd", s.unit))
		must(t, err)
		body = bytes.ReplaceAll(body, []byte(binDir), []byte(bin+"/"))
		must(t, os.WriteFile(filepath.Join(dir, s.name()), body, 0o644))
		names = append(names, s.name())
	}
	if out, err := verify(names...); err != nil || out != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", strings.Join(names, " "), err, out)
	}
}

// TestExamplesAgree checks what ties the example files together, which no single check can
// see: each proxy and its node share an operator name and reach each other on loopback; the
// directory lists each operator, pinned, with its node's peer port; the private proxy pins the
// public proxy's internal endpoint and announces only names the directory grants it there;
// admin listeners are on loopback; nothing of the development settings is left.
func TestExamplesAgree(t *testing.T) {
	dir := loadYAML(t, filepath.Join("etc", "epsproxy", "directory", "001_operators.yml"))
	ops, _ := dir["operators"].(map[string]any)
	publics := map[string]map[string]any{} // operator -> public proxy settings
	for _, s := range services {
		ex := settingsOf(t, s.settings)
		name, _ := ex["name"].(string)
		if ex["log_level"] != "info" {
			t.Errorf("%s: log_level %v, want info", s.settings, ex["log_level"])
		}
		loopback(t, s.settings, "admin.bind", str(ex, "admin.bind"))
		entry, _ := ops[name].(map[string]any)
		if entry == nil {
			t.Errorf("%s: operator %q is not in the directory", s.settings, name)
			continue
		}
		if s.role == "" {
			loopback(t, s.settings, "local.bind", str(ex, "local.bind"))
			if got, want := port(str(entry, "node.address")), port(str(ex, "peer.bind")); got != want {
				t.Errorf("directory: %s's node.address port %s, its node's peer.bind port %s", name, got, want)
			}
			if certs, _ := entry["certificates"].([]any); len(certs) == 0 {
				t.Errorf("directory: %s has no certificates pinned", name)
			}
			continue
		}
		node := settingsOf(t, s.node)
		if node["name"] != name {
			t.Errorf("%s is %q, its node %s is %v", s.settings, name, s.node, node["name"])
		}
		loopback(t, s.settings, "eps.listen", str(ex, "eps.listen"))
		if got, want := str(ex, "eps.node"), "https://"+str(node, "local.bind")+str(node, "local.path"); got != want {
			t.Errorf("%s: eps.node %s, but its node's local API is %s", s.settings, got, want)
		}
		if got, want := str(node, "service.endpoint"), "https://"+str(ex, "eps.listen")+epsclient.DefaultPath; got != want {
			t.Errorf("%s: service.endpoint %s, but its proxy's eps.listen serves %s", s.node, got, want)
		}
		if pins, _ := at(ex, "eps", "pins").([]any); len(pins) == 0 {
			t.Errorf("%s: eps.pins is empty: production proxies pin their node", s.settings)
		}
		if s.role == "public" {
			publics[name] = ex
			if got, want := port(str(ex, "public.internal_endpoint")), port(str(ex, "public.internal_bind")); got != want {
				t.Errorf("%s: internal_endpoint port %s, internal_bind port %s", s.settings, got, want)
			}
		}
	}
	for _, s := range services {
		if s.role != "private" {
			continue
		}
		ex := settingsOf(t, s.settings)
		name, _ := ex["name"].(string)
		endpoints, _ := at(ex, "private", "endpoints").(map[string]any)
		for pub, pex := range publics {
			if got, want := endpoints[pub], str(pex, "public.internal_endpoint"); got != want {
				t.Errorf("%s: private.endpoints[%s] = %v, the public proxy's internal_endpoint is %s", s.settings, pub, got, want)
			}
		}
		anns, _ := at(ex, "private", "announce").([]any)
		if len(anns) == 0 {
			t.Errorf("%s announces nothing", s.settings)
		}
		for _, a := range anns {
			a, _ := a.(map[string]any)
			domain, pub := str(a, "domain"), str(a, "proxy")
			if publics[pub] == nil {
				t.Errorf("%s announces %s to %q, which is no public proxy of the examples", s.settings, domain, pub)
			}
			if allowed := grant(ops, name, pub); !matcher.Allowed(allowed, domain) {
				t.Errorf("%s announces %s to %s, but the directory grants it %q there", s.settings, domain, pub, allowed)
			}
		}
	}

	// Nothing of the development setup, and no path of a build machine.
	devValues := regexp.MustCompile(`\.ga\b|internal-server\.local|settings/dev|/home/|/root/|/work/|/tmp/`)
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(body), "\n") {
			if m := devValues.FindString(line); m != "" {
				t.Errorf("%s:%d: %q belongs to the development setup or to a build machine", path, i+1, m)
			}
		}
		return nil
	})
	must(t, err)
}

// buildCommands builds proxy and eps once per test binary run.
func buildCommands(t *testing.T) string {
	t.Helper()
	build.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "deploy-bin-")
		if build.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", build.dir+string(filepath.Separator), "epsproxy/cmd/proxy", "epsproxy/cmd/eps").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.dir
}

var build struct {
	sync.Once
	dir string
	err error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// placeholder is how the examples write a certificate's fingerprint for the operator to fill
// in: SHA256-OF-<file under /etc/epsproxy/tls>.
var placeholder = regexp.MustCompile(`SHA256-OF-([A-Za-z0-9._-]+\.crt)`)

// install copies etc/epsproxy into a temporary root with /etc/epsproxy moved there, writes a
// CA (tls/ca.crt) and one certificate and key per operator of the directory
// (tls/<operator>.crt and .key) and, with pins, replaces each fingerprint placeholder with
// the fingerprint of the certificate it names. mutate, if set, may change each file's text
// (rel is its path under etc/epsproxy). It returns the root.
func install(t *testing.T, pins bool, mutate func(rel, body string) string) string {
	t.Helper()
	root := t.TempDir()
	etc := filepath.Join(root, etcDir)
	tlsDir := filepath.Join(etc, "tls")
	must(t, os.MkdirAll(tlsDir, 0o755))
	dir := loadYAML(t, filepath.Join("etc", "epsproxy", "directory", "001_operators.yml"))
	ops, _ := dir["operators"].(map[string]any)
	if len(ops) == 0 {
		t.Fatal("the example directory lists no operators")
	}
	names := make([]string, 0, len(ops))
	for n := range ops {
		names = append(names, n)
	}
	p := testnet.NewPKI(t, names...)
	copyFile(t, filepath.Join(p.Dir, pki.RootCertFile), filepath.Join(tlsDir, "ca.crt"))
	for _, n := range names {
		copyFile(t, filepath.Join(p.Dir, n+".crt"), filepath.Join(tlsDir, n+".crt"))
		copyFile(t, filepath.Join(p.Dir, n+".key"), filepath.Join(tlsDir, n+".key"))
	}
	src := filepath.Join("etc", "epsproxy")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		body := strings.ReplaceAll(string(raw), etcDir+"/", etc+"/")
		if pins {
			var missing error
			body = placeholder.ReplaceAllStringFunc(body, func(m string) string {
				pem, err := os.ReadFile(filepath.Join(tlsDir, placeholder.FindStringSubmatch(m)[1]))
				if err != nil {
					missing = fmt.Errorf("%s: %s names no certificate of the test PKI: %w", rel, m, err)
					return m
				}
				return fingerprint(t, pem)
			})
			if missing != nil {
				return missing
			}
		}
		if mutate != nil {
			body = mutate(filepath.ToSlash(rel), body)
		}
		dst := filepath.Join(etc, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(body), 0o644)
	})
	must(t, err)
	return root
}

// check runs `<bin> check` with the unit's variable naming the settings under root, and no
// other PROXY_ or EPS_ variable (they override settings).
func check(t *testing.T, bins, root string, s service) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bins, s.bin), "check")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROXY_") && !strings.HasPrefix(kv, "EPS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, s.envVar+"="+filepath.Join(root, etcDir, s.settings))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, strings.TrimSpace(out.String()), strings.TrimSpace(errOut.String())
}

func fingerprint(t *testing.T, certPEM []byte) string {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	return pki.Fingerprint(block.Bytes)
}

// unit is a parsed unit file: "Section.Key" -> values in order (a key may repeat).
type unit struct {
	raw  []byte
	keys map[string][]string
}

// readUnit parses a unit file, with %i expanded to instance.
func readUnit(t *testing.T, path, instance string) unit {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	if instance != "" {
		raw = bytes.ReplaceAll(raw, []byte("%i"), []byte(instance))
	}
	u := unit{raw: raw, keys: map[string][]string{}}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: a continued line; this test reads one key per line", path, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			k = section + "." + strings.TrimSpace(k)
			u.keys[k] = append(u.keys[k], strings.TrimSpace(v))
		}
	}
	return u
}

// one is the key's value; the key must be set exactly once.
func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	if v := u.keys[key]; len(v) == 1 {
		return v[0]
	}
	t.Errorf("%s is set %d times, want once", key, len(u.keys[key]))
	return ""
}

func (u unit) all(key string) []string { return u.keys[key] }

// settingsOf reads a role's example: its directory must hold exactly one file, so that these
// tests see what the process loads.
func settingsOf(t *testing.T, role string) map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("etc", "epsproxy", role, "*.y*ml"))
	must(t, err)
	if len(files) != 1 {
		t.Fatalf("etc/epsproxy/%s holds %d settings files, want 1", role, len(files))
	}
	return loadYAML(t, files[0])
}

func loadYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// str2 follows keys through nested mappings; nil when one is missing.
func at(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// str is the string at a dotted key; "" when missing.
func str(m map[string]any, dotted string) string {
	s, _ := at(m, strings.Split(dotted, ".")...).(string)
	return s
}

func intOr(m map[string]any, key string, def int) int {
	if n, ok := m[key].(int); ok && n != 0 {
		return n
	}
	return def
}

// binds lists the addresses a process of these settings listens on.
func binds(m map[string]any) []string {
	var out []string
	for _, k := range []string{"public.tls_bind", "public.internal_bind", "eps.listen", "admin.bind", "peer.bind", "local.bind"} {
		if v := str(m, k); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func port(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

func loopback(t *testing.T, file, key, addr string) {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	ip, perr := netip.ParseAddr(host)
	if err != nil || perr != nil || !ip.IsLoopback() {
		t.Errorf("%s: %s %q, want a loopback address", file, key, addr)
	}
}

// grant is what the directory lets operator announce at the proxy of pub.
func grant(ops map[string]any, operator, pub string) []string {
	entry, _ := ops[operator].(map[string]any)
	grants, _ := entry["settings"].([]any)
	for _, g := range grants {
		g, _ := g.(map[string]any)
		if str(g, "service") == "proxy" && str(g, "operator") == pub {
			var out []string
			list, _ := at(g, "settings", "allowed_domains").([]any)
			for _, d := range list {
				out = append(out, fmt.Sprint(d))
			}
			return out
		}
	}
	return nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, 0o600))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

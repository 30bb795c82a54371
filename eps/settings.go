package eps

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"epsproxy/internal/admin"
	"epsproxy/internal/config"
)

// Defaults for the optional settings.
const (
	DefaultCallTimeout = 5 * time.Second
	DefaultMaxInflight = 1024
	DefaultLocalPath   = "/jsonrpc"
	DefaultHealthEvery = 2 * time.Second
	peerPath           = "/eps/v1/call"

	// MaxServiceEndpoints caps service.endpoint and service.endpoints together.
	MaxServiceEndpoints = 64
	// MinHealthEvery is the shortest service.health_every: probing faster only costs handshakes.
	MinHealthEvery = 100 * time.Millisecond
)

// Settings configure a node; `eps server run` loads them from EPS_SETTINGS.
type Settings struct {
	// Name is this node's operator name; its certificate must carry it.
	Name     string     `yaml:"name"`
	LogLevel string     `yaml:"log_level" env:"LOG_LEVEL"`
	TLS      config.TLS `yaml:"tls"`
	Peer     struct {
		// Bind is where other nodes connect (the directory tells them the address).
		Bind string `yaml:"bind" env:"PEER_BIND"`
	} `yaml:"peer"`
	Local struct {
		// Bind is where this operator's own service calls the node.
		Bind string `yaml:"bind" env:"LOCAL_BIND"`
		Path string `yaml:"path"`
	} `yaml:"local"`
	Service struct {
		// Endpoint is the https URL of the service's JSON-RPC endpoint; calls addressed to this
		// operator are delivered there.
		Endpoint string `yaml:"endpoint" env:"SERVICE_ENDPOINT"`
		// Endpoints are more https URLs of the same operator's service, for an operator served
		// by several processes; with Endpoint, every URL is used once (at most
		// MaxServiceEndpoints). Calls are spread over the endpoints that are up.
		Endpoints []string `yaml:"endpoints"`
		// HealthEvery is how often each endpoint is probed (a TLS handshake) when there are
		// several; default DefaultHealthEvery.
		HealthEvery config.Duration `yaml:"health_every"`
	} `yaml:"service"`
	Directory struct {
		Paths []config.Path `yaml:"paths"`
	} `yaml:"directory"`
	// CallTimeout bounds one call from the moment the node receives it.
	CallTimeout config.Duration `yaml:"call_timeout"`
	// MaxInflight caps the calls being delivered at once; more get a 503 error at once.
	MaxInflight int `yaml:"max_inflight"`
	// Admin optionally exposes pprof and /debug/stats on a loopback address.
	Admin admin.Settings `yaml:"admin"`
}

// Validate checks the settings. It changes nothing: a zero key means its default (WithDefaults).
func (s Settings) Validate() error {
	if s.Name == "" {
		return config.Errorf("name", "missing: the operator name of this node")
	}
	if err := s.TLS.Check(); err != nil {
		return config.Join("tls", err)
	}
	if err := checkBind(s.Peer.Bind); err != nil {
		return config.Errorf("peer.bind", "%v", err)
	}
	if err := checkBind(s.Local.Bind); err != nil {
		return config.Errorf("local.bind", "%v", err)
	}
	if s.Local.Path != "" && !strings.HasPrefix(s.Local.Path, "/") {
		return config.Errorf("local.path", "must start with '/'")
	}
	if err := s.checkService(); err != nil {
		return err
	}
	if len(s.Directory.Paths) == 0 {
		return config.Errorf("directory.paths", "missing: the directory files or folders")
	}
	if s.CallTimeout < 0 {
		return config.Errorf("call_timeout", "must not be negative")
	}
	if s.MaxInflight < 0 || s.MaxInflight > 1<<20 {
		return config.Errorf("max_inflight", "want 1 to %d (0: the default, %d)", 1<<20, DefaultMaxInflight)
	}
	if _, err := config.ParseLevel(s.LogLevel, "log_level"); err != nil {
		return err
	}
	if err := s.Admin.Validate(); err != nil {
		return config.Join("admin", err)
	}
	return nil
}

// checkService checks the service endpoints (each an https URL, none twice, at most
// MaxServiceEndpoints) and service.health_every.
func (s Settings) checkService() error {
	if n := len(s.ServiceEndpoints()); n > MaxServiceEndpoints {
		return config.Errorf("service.endpoints", "%d endpoints: at most %d, service.endpoint included", n, MaxServiceEndpoints)
	}
	seen := map[string]string{} // endpointKey -> the key that named it
	check := func(key, raw string) error {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return config.Errorf(key, "want an https:// URL of the service's JSON-RPC endpoint, got %q", raw)
		}
		k := endpointKey(u)
		if first, ok := seen[k]; ok {
			return config.Errorf(key, "%q is the endpoint %s names already: list each endpoint once", raw, first)
		}
		seen[k] = key
		return nil
	}
	if s.Service.Endpoint != "" {
		if err := check("service.endpoint", s.Service.Endpoint); err != nil {
			return err
		}
	}
	for i, e := range s.Service.Endpoints {
		if err := check(fmt.Sprintf("service.endpoints[%d]", i), e); err != nil {
			return err
		}
	}
	if h := s.Service.HealthEvery.D(); h < 0 || (h > 0 && h < MinHealthEvery) {
		return config.Errorf("service.health_every", "%v: want at least %v (0: the default, %v)", h, MinHealthEvery, DefaultHealthEvery)
	}
	return nil
}

// endpointKey is what two URLs naming one endpoint share: the host in lower case with the
// default port made explicit, and the path (empty is "/") with its query.
func endpointKey(u *url.URL) string {
	host := strings.ToLower(u.Host)
	if u.Port() == "" {
		host = net.JoinHostPort(strings.ToLower(u.Hostname()), "443")
	}
	path := cmp.Or(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return host + path
}

// ServiceEndpoints is every service endpoint: service.endpoint first, then service.endpoints.
func (s Settings) ServiceEndpoints() []string {
	var out []string
	if s.Service.Endpoint != "" {
		out = append(out, s.Service.Endpoint)
	}
	return append(out, s.Service.Endpoints...)
}

// WithDefaults returns the settings with every zero key set to its default.
func (s Settings) WithDefaults() Settings {
	s.Local.Path = cmp.Or(s.Local.Path, DefaultLocalPath)
	s.Service.HealthEvery = cmp.Or(s.Service.HealthEvery, config.Duration(DefaultHealthEvery))
	s.CallTimeout = cmp.Or(s.CallTimeout, config.Duration(DefaultCallTimeout))
	s.MaxInflight = cmp.Or(s.MaxInflight, DefaultMaxInflight)
	return s
}

func checkBind(addr string) error {
	if addr == "" {
		return errMissingBind
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return err
	}
	return nil
}

var errMissingBind = bindError("missing: a host:port to listen on")

type bindError string

func (e bindError) Error() string { return string(e) }

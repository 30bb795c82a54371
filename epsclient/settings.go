package epsclient

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"epsproxy/internal/config"
)

// Defaults for the optional settings.
const (
	DefaultWorkers = 16
	DefaultQueue   = 4096
	DefaultTimeout = 5 * time.Second
	DefaultPath    = "/jsonrpc"
)

// Settings are the `eps` block of a proxy's settings.
type Settings struct {
	// Node is the https URL of the local node's API, e.g. https://127.0.0.1:5544/jsonrpc.
	Node string `yaml:"node" env:"EPS_NODE"`
	// Listen is where this proxy serves the calls its node delivers.
	Listen string `yaml:"listen" env:"EPS_LISTEN"`
	Path   string `yaml:"path"`
	// Workers and Queue size the pool that sends calls for the event loops; one operator's calls
	// take at most a quarter of each (see Pool).
	Workers int `yaml:"workers"`
	Queue   int `yaml:"queue"`
	// Timeout bounds one call to the node.
	Timeout config.Duration `yaml:"timeout"`
	// Pins optionally pins the node's certificate: lowercase hex SHA-256 fingerprints of the
	// leaf, as the directory's `certificates` list them. When set, the proxy reaches its node
	// and takes delivered calls only from a certificate listed here.
	Pins []string `yaml:"pins"`
}

// Validate checks the block; keys are relative to it. It changes nothing: a zero key means its
// default (WithDefaults).
func (s Settings) Validate() error {
	u, err := url.Parse(s.Node)
	if s.Node == "" || err != nil || u.Scheme != "https" || u.Host == "" {
		return config.Errorf("node", "want the https:// URL of the local EPS node's API, got %q", s.Node)
	}
	if s.Listen == "" {
		return config.Errorf("listen", "missing: the host:port where the EPS node delivers calls")
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		return config.Errorf("listen", "%v", err)
	}
	if s.Path != "" && !strings.HasPrefix(s.Path, "/") {
		return config.Errorf("path", "must start with '/'")
	}
	if s.Workers < 0 || s.Workers > 256 {
		return config.Errorf("workers", "want 1 to 256 (0: the default, %d)", DefaultWorkers)
	}
	if s.Queue < 0 || s.Queue > 1<<20 {
		return config.Errorf("queue", "want 1 to %d (0: the default, %d)", 1<<20, DefaultQueue)
	}
	if s.Timeout < 0 {
		return config.Errorf("timeout", "must not be negative")
	}
	for i, pin := range s.Pins {
		if b, err := hex.DecodeString(pin); err != nil || len(b) != sha256.Size || pin != strings.ToLower(pin) {
			return config.Errorf("pins["+strconv.Itoa(i)+"]", "want the lowercase hex SHA-256 of a certificate (64 characters), got %q", pin)
		}
	}
	return nil
}

// WithDefaults returns the settings with every zero key set to its default.
func (s Settings) WithDefaults() Settings {
	s.Path = cmp.Or(s.Path, DefaultPath)
	s.Workers = cmp.Or(s.Workers, DefaultWorkers)
	s.Queue = cmp.Or(s.Queue, DefaultQueue)
	s.Timeout = cmp.Or(s.Timeout, config.Duration(DefaultTimeout))
	return s
}

package cluster

import (
	"cmp"
	"net"
	"os"
	"strings"
	"time"

	"epsproxy/internal/config"
)

// Defaults.
const (
	DefaultTimeout   = time.Second
	DefaultHeartbeat = 5 * time.Second
)

// Settings is the `redis` block of a public proxy: where the instances of one operator keep
// their shared state. No block (Addr empty) means no cluster: the proxy keeps its table in a
// file of its own.
type Settings struct {
	// Addr is Redis's host:port.
	Addr string `yaml:"addr" env:"PUBLIC_REDIS_ADDR"`
	// Username and PasswordFile authenticate to Redis (ACL user, or the password alone for
	// requirepass); the file holds the password on its first line.
	Username     string      `yaml:"username"`
	PasswordFile config.Path `yaml:"password_file"`
	// DB is the Redis database number.
	DB int `yaml:"db"`
	// Prefix starts every key and channel (default "epsproxy:{NAME}:", NAME the operator name;
	// the braces keep every key in one Redis Cluster slot, which the scripts need).
	Prefix string `yaml:"prefix"`
	// Timeout bounds a connect and each command (default 1s).
	Timeout config.Duration `yaml:"timeout"`
	// Heartbeat is how often an instance records itself as live (default 5s); an instance not
	// seen for three heartbeats is left out of Instances.
	Heartbeat config.Duration `yaml:"heartbeat"`
}

// Enabled reports whether a Redis address is set.
func (s Settings) Enabled() bool { return s.Addr != "" }

// Validate checks the block (keys relative to it). It changes nothing.
func (s Settings) Validate() error {
	if !s.Enabled() {
		if s.Username != "" || s.PasswordFile != "" || s.Prefix != "" {
			return config.Errorf("addr", "missing: the other redis keys are set but not the address")
		}
		return nil
	}
	if _, port, err := net.SplitHostPort(s.Addr); err != nil || port == "" || port == "0" {
		return config.Errorf("addr", "want host:port of the Redis server, got %q", s.Addr)
	}
	if s.DB < 0 || s.DB > 1<<16 {
		return config.Errorf("db", "want a database number from 0, got %d", s.DB)
	}
	if strings.ContainsAny(s.Prefix, " \n\r\t") {
		return config.Errorf("prefix", "must not contain white space")
	}
	if s.Timeout < 0 {
		return config.Errorf("timeout", "must not be negative")
	}
	if s.Heartbeat < 0 {
		return config.Errorf("heartbeat", "must not be negative")
	}
	if s.PasswordFile != "" {
		if _, err := s.password(); err != nil {
			return config.Errorf("password_file", "%v", err)
		}
	}
	return nil
}

// WithDefaults fills in the defaults; name is the operator name, for the prefix.
func (s Settings) WithDefaults(name string) Settings {
	s.Prefix = cmp.Or(s.Prefix, "epsproxy:{"+name+"}:")
	s.Timeout = cmp.Or(s.Timeout, config.Duration(DefaultTimeout))
	s.Heartbeat = cmp.Or(s.Heartbeat, config.Duration(DefaultHeartbeat))
	return s
}

func (s Settings) password() (string, error) {
	if s.PasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(string(s.PasswordFile))
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

package main

import (
	"log/slog"

	"epsproxy/epsclient"
	"epsproxy/internal/admin"
	"epsproxy/internal/config"
	"epsproxy/proxy"
	"epsproxy/proxy/private"
	"epsproxy/proxy/public"
)

// settings is a proxy's settings file: the operator identity and EPS link every role has, and
// the block of the role being run.
type settings struct {
	// Name is the operator name of this proxy (shared with its EPS node).
	Name     string     `yaml:"name"`
	LogLevel string     `yaml:"log_level" env:"LOG_LEVEL"`
	TLS      config.TLS `yaml:"tls"`
	// EPS is the link to this proxy's own EPS node.
	EPS epsclient.Settings `yaml:"eps"`
	// DataDir holds the state that survives a restart (the announcements).
	DataDir config.Path `yaml:"data_dir" env:"DATA_DIR"`

	// Admin optionally exposes pprof and /debug/stats on a loopback address.
	Admin admin.Settings `yaml:"admin"`

	Public  *public.Settings  `yaml:"public"`
	Private *private.Settings `yaml:"private"`
}

// Validate checks the common part and whichever role blocks are present. It changes nothing.
func (s settings) Validate() error {
	if s.Name == "" {
		return config.Errorf("name", "missing: the operator name of this proxy")
	}
	if _, err := config.ParseLevel(s.LogLevel, "log_level"); err != nil {
		return err
	}
	if err := s.TLS.Check(); err != nil {
		return config.Join("tls", err)
	}
	if err := s.EPS.Validate(); err != nil {
		return config.Join("eps", err)
	}
	if err := s.Admin.Validate(); err != nil {
		return config.Join("admin", err)
	}
	if s.DataDir == "" {
		return config.Errorf("data_dir", "missing: the directory for announcements that survive a restart")
	}
	if s.Public == nil && s.Private == nil {
		return config.Errorf("public", "missing: a `public` or `private` block says which proxy this is")
	}
	if s.Public != nil {
		if err := s.Public.Validate(); err != nil {
			return config.Join("public", err)
		}
	}
	if s.Private != nil {
		if err := s.Private.Validate(); err != nil {
			return config.Join("private", err)
		}
	}
	return nil
}

// base loads the identity and returns what every role starts with.
func (s settings) base(log *slog.Logger) (proxy.Base, error) {
	id, err := s.TLS.Load()
	if err != nil {
		return proxy.Base{}, config.Join("tls", err)
	}
	if id.Cert.Leaf == nil || id.Cert.Leaf.VerifyHostname(s.Name) != nil {
		return proxy.Base{}, config.Errorf("tls.cert_file", "the certificate is not for %q", s.Name)
	}
	return proxy.Base{Name: s.Name, Identity: id, EPS: s.EPS.WithDefaults(), DataDir: string(s.DataDir), Log: log}, nil
}

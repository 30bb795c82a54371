package proxy

import (
	"log/slog"

	"epsproxy/epsclient"
	"epsproxy/internal/config"
)

// Base is what every proxy role starts with.
type Base struct {
	// Name is the operator name; Identity is its certificate, which must be for Name.
	Name     string
	Identity *config.Identity
	// EPS is the link to this operator's own EPS node, with defaults applied.
	EPS epsclient.Settings
	// DataDir holds what survives a restart.
	DataDir string
	Log     *slog.Logger
}

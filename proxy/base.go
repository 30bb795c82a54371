package proxy

import (
	"fmt"
	"log/slog"
	"os"

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

// MakeDataDir creates the data directory (owner only) if it is missing.
func (b Base) MakeDataDir() error {
	if err := os.MkdirAll(b.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	return nil
}

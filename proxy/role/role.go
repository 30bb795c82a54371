// Package role is what every proxy role is built from: its operator name and identity, its EPS
// link settings, its data directory and logger. It exists so proxy/public and proxy/private do not
// import each other or the settings file type.
package role

import (
	"log/slog"

	"epsproxy/epsclient"
	"epsproxy/internal/config"
)

// Base is the common part of a proxy role.
type Base struct {
	Name     string
	Identity *config.Identity
	EPS      epsclient.Settings
	DataDir  string
	Log      *slog.Logger
}

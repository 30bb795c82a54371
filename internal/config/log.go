package config

import (
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
)

// ParseLevel reads a log level ("debug", "info", "warn", "error"; empty means info). An unknown
// level is a *KeyError for key.
func ParseLevel(level, key string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, Errorf(key, "unknown log level %q (want debug, info, warn or error)", level)
}

// Logger returns the process logger: text lines on w from the given level up (a *slog.LevelVar
// lets a reload change it).
func Logger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Version is the module version the binary was built from ("devel" for a work tree build).
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

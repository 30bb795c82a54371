package haproxy

import (
	"context"
	"io"
	"os/exec"
	"strings"

	"epsproxy/bench/apt"
)

// Find returns the path of the haproxy binary, or "" when there is none. Safe from any goroutine.
func Find() string { return apt.Find("haproxy") }

// Ensure returns the haproxy binary, installing the Debian package first when it is missing and
// this process runs as root (see apt.Ensure). Call it from one goroutine at a time.
func Ensure(ctx context.Context, w io.Writer) (string, error) {
	return apt.Ensure(ctx, w, "haproxy", "haproxy")
}

// Version returns the first line of `haproxy -v`, or "" if it cannot run. Safe from any
// goroutine.
func Version(bin string) string {
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

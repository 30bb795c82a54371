package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// installTimeout bounds each apt-get call.
const installTimeout = 5 * time.Minute

// Find returns the path of the haproxy binary, or "" when there is none. Debian installs it in
// /usr/sbin, which a non-login PATH may lack. Safe from any goroutine.
func Find() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Ensure returns the haproxy binary, installing the Debian package first when it is missing and
// this process runs as root (apt-get install -y haproxy; apt-get update and once more if that
// fails). apt-get's output goes to w. Otherwise it returns an error that says why, for the
// report's skip line. Call it from one goroutine at a time (apt-get holds a system-wide lock).
func Ensure(ctx context.Context, w io.Writer) (string, error) {
	if p := Find(); p != "" {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("haproxy is not installed and this is not root (apt-get install -y haproxy)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", errors.New("haproxy is not installed and there is no apt-get")
	}
	install := func(args ...string) error {
		cctx, cancel := context.WithTimeout(ctx, installTimeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = w, w
		return cmd.Run()
	}
	fmt.Fprintln(w, "haproxy is missing: apt-get install -y haproxy")
	err := install("install", "-y", "--no-install-recommends", "haproxy")
	if err != nil {
		fmt.Fprintln(w, "apt-get install failed; apt-get update and retry")
		if err = install("update"); err == nil {
			err = install("install", "-y", "--no-install-recommends", "haproxy")
		}
	}
	if p := Find(); p != "" {
		return p, nil
	}
	if err == nil {
		err = errors.New("no haproxy binary after the install")
	}
	return "", fmt.Errorf("installing haproxy: %w", err)
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

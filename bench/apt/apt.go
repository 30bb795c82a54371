// Package apt finds the tools the benchmark harness runs beside the proxy (HAProxy, GNU parallel,
// curl) and, when one is missing and the harness runs as root on Debian, installs its package
// with apt-get, so that `make bench` works from a fresh clone on a fresh machine.
//
// Typical use:
//
//	bin, err := apt.Ensure(ctx, os.Stderr, "haproxy", "haproxy") // the binary, installed if need be
//
// It never removes or upgrades anything and touches nothing but the packages it is asked for.
package apt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// installTimeout bounds each apt-get call.
const installTimeout = 5 * time.Minute

// sbin are where Debian installs daemons such as haproxy, which a non-login PATH may lack.
var sbin = []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}

// Find returns the path of the command bin, on PATH or in the sbin directories, or "".
func Find(bin string) string {
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	for _, dir := range sbin {
		p := filepath.Join(dir, bin)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Ensure returns the path of the command bin, installing the Debian package pkg first when the
// command is missing and this process runs as root (apt-get install -y; after a failure, apt-get
// update and once more). apt-get's output goes to w. Otherwise it returns an error saying why,
// fit for the report's skip line. Call it from one goroutine at a time: apt-get holds a
// system-wide lock.
func Ensure(ctx context.Context, w io.Writer, pkg, bin string) (string, error) {
	if p := Find(bin); p != "" {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%s is not installed and this is not root (apt-get install -y %s)", bin, pkg)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("%s is not installed and there is no apt-get", bin)
	}
	run := func(args ...string) error {
		cctx, cancel := context.WithTimeout(ctx, installTimeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = w, w
		return cmd.Run()
	}
	fmt.Fprintf(w, "%s is missing: apt-get install -y %s\n", bin, pkg)
	err := run("install", "-y", "--no-install-recommends", pkg)
	if err != nil {
		fmt.Fprintln(w, "apt-get install failed; apt-get update and retry")
		if err = run("update"); err == nil {
			err = run("install", "-y", "--no-install-recommends", pkg)
		}
	}
	if p := Find(bin); p != "" {
		return p, nil
	}
	if err == nil {
		err = errors.New("no " + bin + " binary after the install")
	}
	return "", fmt.Errorf("installing %s: %w", pkg, err)
}

package proc

import (
	"golang.org/x/sys/unix"
)

// RaiseNoFile lifts this process's soft RLIMIT_NOFILE to its hard limit and returns the new soft
// limit. Setting it explicitly (rather than relying on the Go runtime's own raise) also makes
// child processes started afterwards inherit it, which the chain's processes and HAProxy need.
// Call it once at start, before starting children; it changes process-wide state.
func RaiseNoFile() (uint64, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	r.Cur = r.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return r.Cur, nil
}

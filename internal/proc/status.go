package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadRSS returns pid's resident set size in bytes (VmRSS). Safe from any goroutine.
func ReadRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	kb, err := statusKB(b, "VmRSS")
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return kb * 1024, nil
}

// statusKB finds a "Key:   123 kB" line of /proc/PID/status (or /proc/meminfo) and returns 123.
func statusKB(b []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != key {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: want \"<n> kB\", got %q", key, strings.TrimSpace(rest))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: bad number %q", key, f[0])
		}
		return n, nil
	}
	return 0, fmt.Errorf("no %s line", key)
}

// CountFDs returns how many file descriptors pid has open. Safe from any goroutine.
func CountFDs(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// Names only: Readdirnames avoids an lstat per descriptor, which matters at 18,000 fds.
	names, err := f.Readdirnames(-1)
	return len(names), err
}

package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// ReadSwitches returns how many context switches pid's threads have made so far: the sum of
// voluntary_ctxt_switches and nonvoluntary_ctxt_switches in /proc/PID/task/*/status, over the
// threads alive when it reads (/proc/PID/status alone counts the main thread only). A thread
// that exits between the listing and its read is skipped, and its count leaves the sum with it:
// between two reads the sum can drop when a thread exits, which Go processes rarely do. Safe
// from any goroutine.
func ReadSwitches(pid int) (int64, error) {
	return sumSwitches("/proc/" + strconv.Itoa(pid) + "/task")
}

// sumSwitches adds up the switches of every thread directory under taskDir.
func sumSwitches(taskDir string) (int64, error) {
	tids, err := dirNames(taskDir)
	if err != nil {
		return 0, err
	}
	var sum int64
	read := 0
	for _, tid := range tids {
		path := filepath.Join(taskDir, tid, "status")
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // the thread exited after the listing
		}
		if err != nil {
			return 0, err
		}
		n, err := parseSwitches(b)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		sum += n
		read++
	}
	if read == 0 {
		return 0, fmt.Errorf("%s: no thread left to read", taskDir)
	}
	return sum, nil
}

// parseSwitches returns voluntary plus nonvoluntary context switches of a status file.
func parseSwitches(b []byte) (int64, error) {
	v, err := statusCount(b, "voluntary_ctxt_switches")
	if err != nil {
		return 0, err
	}
	n, err := statusCount(b, "nonvoluntary_ctxt_switches")
	if err != nil {
		return 0, err
	}
	return v + n, nil
}

package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ReadMachineCPU returns the CPU time the whole machine has spent busy so far, over every CPU:
// user, nice, system, irq and softirq from the "cpu" line of /proc/stat (guest time is already
// inside user). Idle, iowait and steal are left out: steal is time the hypervisor gave someone
// else. The resolution is ClockTick. Safe from any goroutine.
func ReadMachineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	ticks, err := parseMachineCPU(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/stat: %w", err)
	}
	return time.Duration(ticks) * ClockTick, nil
}

// parseMachineCPU sums the busy fields of /proc/stat's first line, "cpu  user nice system idle
// iowait irq softirq steal ...".
func parseMachineCPU(b []byte) (uint64, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) == 0 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("first line %q is not the all-CPU line", trunc(line))
	}
	if len(f) < 8 {
		return 0, fmt.Errorf("%d fields on the cpu line, want at least 8", len(f))
	}
	var sum uint64
	for _, i := range []int{1, 2, 3, 6, 7} { // user, nice, system, irq, softirq
		v, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu field %d: %w", i, err)
		}
		sum += v
	}
	return sum, nil
}

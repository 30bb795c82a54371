package proc

import (
	"testing"
	"time"
)

func TestParseMachineCPUSumsTheBusyFields(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice: busy is 100+2+30+4+5.
	stat := "cpu  100 2 30 9000 70 4 5 600 0 0\ncpu0 50 1 15 4500 35 2 3 300 0 0\nintr 1 2 3\n"
	n, err := parseMachineCPU([]byte(stat))
	if err != nil || n != 141 {
		t.Fatalf("parseMachineCPU = %d, %v; want 141 (idle, iowait and steal left out)", n, err)
	}
}

func TestParseMachineCPURejectsBadInput(t *testing.T) {
	for _, in := range []string{
		"",
		"cpu0 1 2 3 4 5 6 7 8\n",
		"cpu  1 2 3 4 5 6\n",
		"cpu  1 2 x 4 5 6 7 8\n",
		"cpu  1 2 3 4 5 -6 7 8\n",
	} {
		if _, err := parseMachineCPU([]byte(in)); err == nil {
			t.Errorf("parseMachineCPU(%q) succeeded; want an error", in)
		}
	}
}

func TestReadMachineCPUGrowsWhileThisProcessSpins(t *testing.T) {
	before, err := ReadMachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Spin for 100 ms of wall time: the machine's busy time must grow by at least a few ticks.
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := ReadMachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 3*ClockTick {
		t.Fatalf("machine busy time over 100 ms of spinning: %v -> %v; want at least 30 ms more", before, after)
	}
}

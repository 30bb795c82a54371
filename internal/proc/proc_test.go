package proc

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseStatNameWithSpacesAndParens(t *testing.T) {
	// A command name may contain ") " itself; fields must be counted after the last ')'.
	line := "4242 (we) ird (name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 8 0 99 0 0\n"
	u, s, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if u != 1234 || s != 567 {
		t.Fatalf("utime, stime = %d, %d; want 1234, 567", u, s)
	}
}

func TestParseStatRejectsBadInput(t *testing.T) {
	for _, in := range []string{
		"",
		"no parens at all 1 2 3",
		"1 (x) S 1 2",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 ten 12",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 -5 12 13",
	} {
		if _, _, err := parseStat([]byte(in)); err == nil {
			t.Errorf("parseStat(%q) succeeded; want an error", in)
		}
	}
}

func TestStatusKB(t *testing.T) {
	status := "Name:\tproxy\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
	n, err := statusKB([]byte(status), "VmRSS")
	if err != nil || n != 12345 {
		t.Fatalf("VmRSS = %d, %v; want 12345", n, err)
	}
	if _, err := statusKB([]byte(status), "VmSwap"); err == nil {
		t.Error("missing key: no error")
	}
	if _, err := statusKB([]byte("VmRSS:\t12 MB\n"), "VmRSS"); err == nil {
		t.Error("unit other than kB: no error")
	}
	if _, err := statusKB([]byte("VmRSS:\tlots kB\n"), "VmRSS"); err == nil {
		t.Error("non-numeric value: no error")
	}
}

func TestParseSwitches(t *testing.T) {
	status := "Name:\tproxy\nThreads:\t9\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n"
	if n, err := parseSwitches([]byte(status)); err != nil || n != 127 {
		t.Fatalf("parseSwitches = %d, %v; want 120+7", n, err)
	}
	for name, in := range map[string]string{
		"no voluntary line":    "nonvoluntary_ctxt_switches:\t7\n",
		"no nonvoluntary line": "voluntary_ctxt_switches:\t120\n",
		"non-numeric":          "voluntary_ctxt_switches:\tmany\nnonvoluntary_ctxt_switches:\t7\n",
		"negative":             "voluntary_ctxt_switches:\t-1\nnonvoluntary_ctxt_switches:\t7\n",
		"a unit":               "voluntary_ctxt_switches:\t120 kB\nnonvoluntary_ctxt_switches:\t7\n",
		"empty value":          "voluntary_ctxt_switches:\nnonvoluntary_ctxt_switches:\t7\n",
	} {
		if _, err := parseSwitches([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A thread listed in task/ whose status is gone by the time it is read has exited: it is
// skipped, and only a task directory with no thread left is an error.
func TestSumSwitchesSkipsVanishedThreads(t *testing.T) {
	task := t.TempDir()
	write := func(tid, status string) {
		if err := os.MkdirAll(filepath.Join(task, tid), 0o755); err != nil {
			t.Fatal(err)
		}
		if status != "" {
			if err := os.WriteFile(filepath.Join(task, tid, "status"), []byte(status), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("100", "voluntary_ctxt_switches:\t10\nnonvoluntary_ctxt_switches:\t1\n")
	write("101", "") // exited after the listing
	write("102", "voluntary_ctxt_switches:\t20\nnonvoluntary_ctxt_switches:\t2\n")
	if n, err := sumSwitches(task); err != nil || n != 33 {
		t.Fatalf("sumSwitches = %d, %v; want 11+22 with the vanished thread skipped", n, err)
	}
	write("103", "voluntary_ctxt_switches:\tlots\n")
	if _, err := sumSwitches(task); err == nil {
		t.Error("a thread's unreadable status: no error")
	}
	empty := t.TempDir()
	if err := os.Mkdir(filepath.Join(empty, "200"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := sumSwitches(empty); err == nil {
		t.Error("every thread gone: no error")
	}
}

func TestReadSwitchesGrowsOnThisProcess(t *testing.T) {
	pid := os.Getpid()
	before, err := ReadSwitches(pid)
	if err != nil || before <= 0 {
		t.Fatalf("ReadSwitches(self) = %d, %v", before, err)
	}
	// Each sleep parks the goroutine and lets its thread block: at least one switch.
	for range 20 {
		time.Sleep(time.Millisecond)
		runtime.Gosched()
	}
	after, err := ReadSwitches(pid)
	if err != nil || after <= before {
		t.Fatalf("switches after 20 sleeps: %d -> %d (%v); want more", before, after, err)
	}
}

func TestReadersOnThisProcess(t *testing.T) {
	pid := os.Getpid()
	rss, err := ReadRSS(pid)
	if err != nil || rss <= 0 {
		t.Fatalf("ReadRSS(self) = %d, %v", rss, err)
	}
	if _, err := ReadCPU(pid); err != nil {
		t.Fatalf("ReadCPU(self): %v", err)
	}
	before, err := CountFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	for i := range 3 {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	after, err := CountFDs(pid)
	for _, f := range files {
		f.Close()
	}
	if err != nil || after-before != 3 {
		t.Fatalf("fds after opening 3 files: %d -> %d (%v); want +3", before, after, err)
	}
}

func TestReadersOnMissingProcess(t *testing.T) {
	// PID 0 has no /proc entry: every reader must return an error, not zero values.
	if _, err := ReadCPU(0); err == nil {
		t.Error("ReadCPU(0): no error")
	}
	if _, err := ReadRSS(0); err == nil {
		t.Error("ReadRSS(0): no error")
	}
	if _, err := CountFDs(0); err == nil {
		t.Error("CountFDs(0): no error")
	}
	if _, err := ReadSwitches(0); err == nil {
		t.Error("ReadSwitches(0): no error")
	}
}

func TestDescribeAndLoadAvg(t *testing.T) {
	m := Describe()
	if m.CPUs < 1 || !strings.HasPrefix(m.Go, "go") || m.Kernel == "" {
		t.Fatalf("Describe() = %+v", m)
	}
	if f := strings.Fields(LoadAvg()); len(f) != 3 {
		t.Fatalf("LoadAvg() = %q; want three numbers", LoadAvg())
	}
}

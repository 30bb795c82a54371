package proc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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

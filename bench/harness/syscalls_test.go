package harness

import (
	"strings"
	"testing"

	"epsproxy/internal/chain"
)

// perfOutput is what `perf stat -x, -o FILE -e ... -p PID` wrote in a real run (trimmed).
const perfOutput = `# started on Wed Dec  2 21:09:01 2026

99000,,raw_syscalls:sys_enter,1298021530,100.00,,
33266,,syscalls:sys_enter_epoll_pwait,1298021530,100.00,,
0,,syscalls:sys_enter_epoll_wait,1298021530,100.00,,
45028,,syscalls:sys_enter_epoll_ctl,1298021530,100.00,,
42875,,syscalls:sys_enter_splice,1298021530,100.00,,
`

func TestParsePerfStat(t *testing.T) {
	m, err := parsePerfStat([]byte(perfOutput))
	if err != nil {
		t.Fatal(err)
	}
	if m[totalEvent] != 99000 || m["syscalls:sys_enter_splice"] != 42875 || m["syscalls:sys_enter_epoll_wait"] != 0 || len(m) != 5 {
		t.Fatalf("parsed %v", m)
	}
	c := perConn(TargetChain, chain.Public, 1000, m)
	if c.Total != 99 || c.PerConn["epoll_pwait"] != 33.266 || c.PerConn["splice"] != 42.875 {
		t.Fatalf("per connection: %+v", c)
	}
	if _, ok := c.PerConn["epoll_wait"]; ok {
		t.Fatal("a call never made is listed")
	}
	idle, err := parsePerfStat([]byte("<not counted>,,raw_syscalls:sys_enter,0,0.00,,\n"))
	if err != nil || idle[totalEvent] != 0 {
		t.Errorf("a process that never ran: %v, %v; want 0 calls", idle, err)
	}
	for name, bad := range map[string]string{
		"no total":   "5,,syscalls:sys_enter_splice,1,100.00,,\n",
		"short line": "99,raw_syscalls:sys_enter\n",
	} {
		if _, err := parsePerfStat([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := parsePerfStat([]byte(strings.Replace(perfOutput, "42875", "<not supported>", 1))); err == nil ||
		!strings.Contains(err.Error(), "sys_enter_splice") {
		t.Errorf("an uncountable event: %v, want an error naming it", err)
	}
}

func TestSyscallTable(t *testing.T) {
	res := &Results{SyscallNs: 1015, Syscalls: []SyscallCount{
		{Target: TargetHAProxy1, Process: ProcHAProxyA, Conns: 3000, Total: 40,
			PerConn: map[string]Float{"epoll_wait": 8, "recvfrom": 8.5, "sendto": 5, "clock_gettime": 1}},
		{Target: TargetChain, Process: chain.Public, Conns: 3000, Total: 42,
			PerConn: map[string]Float{"epoll_pwait": 6.5, "epoll_ctl": 9, "splice": 8.5, "futex": 1}},
	}}
	tb := syscallTable(res)
	if len(tb.Rows) != 2 || tb.Rows[0][0] != TargetChain {
		t.Fatalf("rows %v, want the chain first", tb.Rows)
	}
	col := func(name string) int {
		for i, h := range tb.Header {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %q in %v", name, tb.Header)
		return -1
	}
	chainRow, hap := tb.Rows[0], tb.Rows[1]
	if chainRow[col("total")] != "42.0" || chainRow[col("epoll wait")] != "6.5" || chainRow[col("futex, sleep")] != "1.0" ||
		chainRow[col("other")] != "17.0" {
		t.Errorf("chain row %v", chainRow)
	}
	// accept4 and the like are in no group in this fixture's map: they are part of "other".
	if hap[col("recv, read")] != "8.5" || hap[col("clock_gettime")] != "1.0" || hap[col("other")] != "17.5" {
		t.Errorf("haproxy row %v", hap)
	}
	md := tb.Markdown()
	if !strings.Contains(md, "3000 connections per target") || !strings.Contains(md, "1015 ns") {
		t.Errorf("notes: %s", md)
	}
}

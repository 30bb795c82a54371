package engine_test

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"epsproxy/engine"
)

// A flood of refusals writes a bounded number of log lines: a few per reason per interval, then
// one summary line per reason, while the counters count every refusal.

// logBuf collects the engine's log lines; safe for the engine's loops and the test at once.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines that contain every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// attr returns the integer value of key=... in a text-handler line.
func attr(t testing.TB, line, key string) int64 {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s in %q: %v", key, line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in %q", key, line)
	return 0
}

func logRig(t testing.TB, lines int, every time.Duration) (*rig, *logBuf) {
	buf := &logBuf{}
	r := newRigLog(t, func(c *engine.Config) {
		c.HelloTimeout = longPhase
		c.RefusalLogLines = lines
		c.RefusalLogInterval = every
	}, slog.New(slog.NewTextHandler(buf, nil)))
	return r, buf
}

// flood sends n requests that are not TLS and waits until each was refused.
func flood(t testing.TB, r *rig, n int) {
	t.Helper()
	for range n {
		c := dial(t, r.cfg.PublicAddr)
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		refusedAtOnce(t, c, "request that is not TLS")
		c.Close()
	}
	waitFor(t, "every refusal to be counted", func() bool { return r.eng.Stats().Refused.Load() == int64(n) })
}

func TestRefusalLogIsBounded(t *testing.T) {
	t.Parallel()
	const n, lines = 40, 3
	r, buf := logRig(t, lines, longPhase)
	flood(t, r, n)
	if got := len(buf.lines("client refused", "reason=not_tls")); got != lines {
		t.Errorf("%d refusal lines in the interval, want %d", got, lines)
	}
	if got := buf.lines("refusals not logged"); len(got) != 0 {
		t.Errorf("summary before the interval ended: %q", got)
	}
	// Stop ends the interval: the summary is written.
	r.close()
	sums := buf.lines("refusals not logged", "reason=not_tls")
	if len(sums) != 1 {
		t.Fatalf("summary lines: %q, want one", sums)
	}
	if refused, suppressed := attr(t, sums[0], "refused"), attr(t, sums[0], "suppressed"); refused != n || suppressed != n-lines {
		t.Errorf("summary says %d refused, %d suppressed; want %d and %d", refused, suppressed, n, n-lines)
	}
	if got := len(buf.lines("refusals not logged")); got != 1 {
		t.Errorf("%d summary lines, want one (one reason)", got)
	}
	wantStats(t, r.eng, map[string]int64{"Accepted": n, "Refused": n})
}

// With a short interval the summaries come from the engine's tick, and over every interval each
// refusal is either a line of its own or counted in a summary.
func TestRefusalLogSummaryEachInterval(t *testing.T) {
	t.Parallel()
	const n, lines = 30, 2
	r, buf := logRig(t, lines, 200*time.Millisecond)
	flood(t, r, n)
	waitFor(t, "a summary line", func() bool { return len(buf.lines("refusals not logged", "reason=not_tls")) > 0 })
	r.close()
	own := len(buf.lines("client refused", "reason=not_tls"))
	var suppressed int64
	sums := buf.lines("refusals not logged", "reason=not_tls")
	for _, line := range sums {
		suppressed += attr(t, line, "suppressed")
	}
	if int64(own)+suppressed != n {
		t.Errorf("%d lines of their own and %d suppressed, want %d in all", own, suppressed, n)
	}
}

package engine

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Refusal log lines are bounded so that a flood cannot fill the disk: every refusal is counted
// (Stats), but in each interval only the first lines of each reason are written one by one, and
// at the end of an interval in which some were not, one summary line per reason says how many
// refusals there were and how many lines were left out. The loops only add to an atomic counter;
// the summary is written from OnTick.

// refusalReasons are the reasons refusal lines name; the table has one slot for each, so its size
// is fixed whatever a flood sends. A reason not listed is counted under "other".
var refusalReasons = [...]string{
	// OnOpen, both listeners.
	"fd_budget", "rate_limited", "too_many_hellos", "source_busy", "too_many_tokens",
	// The hello phase (hello.Reason's labels among them) and the waiting phase.
	"not_tls", "sslv2", "too_large", "malformed", "no_sni", "bad_name", "other",
	"no_route", "no_entropy", "too_many_pending", "dup_failed", "notify_failed",
	"too_much_early_data", "hello_timeout", "accept_timeout",
	// The token phase.
	"bytes_after_token", "unknown_token", "token_timeout", "standby_full",
	// A routed client the relay did not take (at max_pairs, or shutting down).
	"relay_refused",
}

var refusalSlot = func() map[string]int {
	m := make(map[string]int, len(refusalReasons))
	for i, r := range refusalReasons {
		m[r] = i
	}
	return m
}()

// refusalLog decides which refusals get a line of their own.
type refusalLog struct {
	log   *slog.Logger
	lines int64 // lines per reason per interval; <= 0: every refusal gets one
	every time.Duration

	n [len(refusalReasons)]atomic.Int64 // refusals of each reason in this interval

	mu    sync.Mutex // flush's; the loops never take it
	start time.Time  // of this interval
}

func newRefusalLog(log *slog.Logger, lines int, every time.Duration, now time.Time) *refusalLog {
	return &refusalLog{log: log, lines: int64(lines), every: every, start: now}
}

// refusalIndex is reason's slot, that of "other" for a reason not listed.
func refusalIndex(reason string) int {
	i, ok := refusalSlot[reason]
	if !ok {
		i = refusalSlot["other"]
	}
	return i
}

// allow counts a refusal for the reason in slot i (refusalIndex) and reports whether it gets a
// line of its own. Callers check it before building the line's attributes, so a suppressed
// refusal costs an atomic add.
func (r *refusalLog) allow(i int) bool {
	n := r.n[i].Add(1)
	return r.lines <= 0 || n <= r.lines
}

// flush ends the interval if it has run out, or at once if force: a summary line for each reason
// that had refusals without a line, and the counts start afresh.
func (r *refusalLog) flush(now time.Time, force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !force && now.Sub(r.start) < r.every {
		return
	}
	r.start = now
	for i := range r.n {
		n := r.n[i].Swap(0)
		if r.lines > 0 && n > r.lines {
			r.log.Info("refusals not logged one by one", "reason", refusalReasons[i], "refused", n, "suppressed", n-r.lines, "interval", r.every)
		}
	}
}

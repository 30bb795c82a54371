package relay

import (
	"errors"
	"syscall"
	"testing"
)

// Logs and dashboards built on the old string reasons keep their texts.
func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{
		ReasonDone:     "done",
		ReasonIdle:     "idle",
		ReasonFinIdle:  "half-closed idle",
		ReasonShutdown: "shutdown",
		ReasonFailed:   "error",
		0:              "Reason(0)",
		200:            "Reason(200)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String() = %q, want %q", uint8(r), got, want)
		}
	}
}

func TestPairError(t *testing.T) {
	var err error = &PairError{Op: "splice from", Side: "a", Err: syscall.ECONNRESET}
	if got, want := err.Error(), "splice from a: "+syscall.ECONNRESET.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("errors.Is does not see the errno beneath %v", err)
	}
	var pe *PairError
	if !errors.As(err, &pe) || pe.Op != "splice from" || pe.Side != "a" {
		t.Errorf("errors.As: %+v", pe)
	}
	loopErr := &PairError{Op: "epoll_wait", Err: syscall.EBADF}
	if got, want := loopErr.Error(), "epoll_wait: "+syscall.EBADF.Error(); got != want {
		t.Errorf("Error() without a side = %q, want %q", got, want)
	}
}

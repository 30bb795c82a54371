package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/internal/jsonrpc"
)

// CallBuckets are the latency buckets of EPS calls, in seconds: a call through two nodes on a
// LAN takes milliseconds, and the call timeouts are seconds.
var CallBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// OtherMethod is the method label of a method the Calls was not told of.
const OtherMethod = "_other"

// Calls is a histogram of EPS calls by method and result: its _count series are the calls, its
// buckets their latency.
type Calls struct {
	h     *prometheus.HistogramVec
	known func(method string) bool
}

// NewCalls makes the histogram name (under Namespace) with help. known says which methods are a
// label of their own; the others count as OtherMethod (nil: every method, for callers whose
// methods are constants of the code).
func NewCalls(name, help string, known func(method string) bool) *Calls {
	return &Calls{
		h: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: name, Help: help, Buckets: CallBuckets,
		}, []string{"method", "result"}),
		known: known,
	}
}

// Observe counts one call of method that took d and ended with err (nil: a result). Safe from
// any goroutine.
func (c *Calls) Observe(method string, d time.Duration, err error) {
	if c.known != nil && !c.known(method) {
		method = OtherMethod
	}
	c.h.WithLabelValues(method, Result(err)).Observe(d.Seconds())
}

// Describe and Collect make Calls a prometheus.Collector.
func (c *Calls) Describe(ch chan<- *prometheus.Desc) { c.h.Describe(ch) }

// Collect sends the histogram.
func (c *Calls) Collect(ch chan<- prometheus.Metric) { c.h.Collect(ch) }

// Result names how a call ended, for the result label: "ok", or its JSON-RPC error's class
// ("not_found", "not_allowed", "no_method", "bad_request", "conflict", "full", "overloaded",
// "unreachable", "timeout", "internal_error"; "error" for any other code). A plain error counts
// as "internal_error", as jsonrpc.AsError reads it.
func Result(err error) string {
	if err == nil {
		return "ok"
	}
	switch jsonrpc.AsError(err).Code {
	case jsonrpc.CodeNotFound:
		return "not_found"
	case jsonrpc.CodeNotAllowed:
		return "not_allowed"
	case jsonrpc.CodeMethodNotFound:
		return "no_method"
	case jsonrpc.CodeBadRequest, jsonrpc.CodeInvalidParams, jsonrpc.CodeInvalidRequest, jsonrpc.CodeParseError:
		return "bad_request"
	case jsonrpc.CodeConflict:
		return "conflict"
	case jsonrpc.CodeFull:
		return "full"
	case jsonrpc.CodeOverloaded:
		return "overloaded"
	case jsonrpc.CodeUnreachable:
		return "unreachable"
	case jsonrpc.CodeTimeout:
		return "timeout"
	case jsonrpc.CodeInternal:
		return "internal_error"
	}
	return "error"
}

// NewClientCalls is the histogram of a proxy's calls through its EPS node, by method (without
// the operator: the methods are the code's own) and result.
func NewClientCalls() *Calls {
	return NewCalls("eps_client_call_duration_seconds", "Calls this proxy made through its EPS node, by method and result, and how long they took.", nil)
}

package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
)

// Client posts JSON-RPC requests to one URL over a shared, keep-alive *http.Client. It is safe
// for concurrent use; the zero value is not usable (URL and HTTP must be set).
type Client struct {
	URL  string
	HTTP *http.Client
	seq  atomic.Uint64
}

// Call sends method with params and decodes the result into result (which may be nil). A
// JSON-RPC error comes back as *Error; a transport failure as *Error with CodeUnreachable or
// CodeTimeout, so callers can log and map every failure the same way.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	raw, err := c.CallRaw(ctx, method, params)
	if err != nil {
		return err
	}
	if result == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return Errorf(CodeInternal, "decoding the result of %s: %v", method, err)
	}
	return nil
}

// CallRaw is Call returning the undecoded result.
func (c *Client) CallRaw(ctx context.Context, method string, params any) (json.RawMessage, error) {
	var p json.RawMessage
	switch v := params.(type) {
	case nil:
	case json.RawMessage:
		p = v
	default:
		b, err := json.Marshal(params)
		if err != nil {
			return nil, Errorf(CodeInvalidParams, "encoding params of %s: %v", method, err)
		}
		p = b
	}
	id := strconv.AppendUint(nil, c.seq.Add(1), 10)
	body, err := json.Marshal(&Request{JSONRPC: Version, Method: method, Params: p, ID: id})
	if err != nil {
		return nil, Errorf(CodeInternal, "encoding the request: %v", err)
	}
	return c.Post(ctx, body)
}

// Post sends an already encoded request body and returns the result of the response. When the
// request failed before it could reach the server, Unsent reports so on the error.
func (c *Client) Post(ctx context.Context, body []byte) (json.RawMessage, error) {
	var conn connWatch
	req, err := http.NewRequestWithContext(conn.watch(ctx), http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, Errorf(CodeInternal, "building the request to %s: %v", c.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		e := TransportError(ctx, c.URL, err)
		e.unsent = conn.waiting.Load() && ctx.Err() == nil
		return nil, e
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, TransportError(ctx, c.URL, err)
	}
	if len(data) > MaxBody {
		return nil, Errorf(CodeInternal, "response from %s larger than %d bytes", c.URL, MaxBody)
	}
	var out Response
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, Errorf(CodeInternal, "response from %s (HTTP %d) is not JSON-RPC: %.200q", c.URL, resp.StatusCode, data)
	}
	if out.Error != nil {
		return nil, out.Error
	}
	return out.Result, nil
}

// Unsent reports whether err, from Post, Call or CallRaw, is a failure that happened before the
// request could reach the server: no connection to it could be had (the dial or the TLS handshake
// failed, or timed out) while the call itself still had time. Such a call cannot have taken
// effect, so it may be sent to another server. Any other failure (the call's own deadline or
// cancellation, a connection lost once the request was on it, an answer) may have taken effect.
func Unsent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.unsent
}

// connWatch follows one request's search for a connection. net/http calls GetConn when an
// attempt starts looking for one and GotConn once it has one (HTTP/2 included), so a request that
// failed while waiting failed in its dial or handshake: nothing of it was written. An earlier
// attempt that did get a connection is no exception: net/http retries only an attempt the server
// cannot have processed (HTTP/2 GOAWAY or REFUSED_STREAM, a connection that proved unusable).
type connWatch struct{ waiting atomic.Bool }

func (w *connWatch) watch(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn: func(string) { w.waiting.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { w.waiting.Store(false) },
	})
}

// TransportError classifies a failed HTTP exchange as a timeout or an unreachable peer.
func TransportError(ctx context.Context, target string, err error) *Error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded || (errors.As(err, &ne) && ne.Timeout()) {
		return Errorf(CodeTimeout, "%s did not answer in time", target)
	}
	if errors.Is(err, context.Canceled) {
		return Errorf(CodeUnreachable, "call to %s cancelled", target)
	}
	return &Error{Code: CodeUnreachable, Message: fmt.Sprintf("%s unreachable: %v", target, rootCause(err))}
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

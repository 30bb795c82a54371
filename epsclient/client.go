package epsclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/metrics"
)

// Client calls other operators' methods through the local node. Safe for concurrent use.
type Client struct {
	rpc     *jsonrpc.Client
	timeout time.Duration
	calls   *metrics.Calls // nil: calls are not timed
}

// NewClient builds a client for the node at s.Node, presenting id (this operator's certificate,
// whose name the node checks) and verifying the node as operator. Zero settings take their
// defaults.
func NewClient(s Settings, id *config.Identity, operator string) *Client {
	s = s.WithDefaults()
	tc := id.ClientConfig(operator)
	if len(s.Pins) > 0 {
		byName := tc.VerifyConnection
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := byName(cs); err != nil {
				return err
			}
			return pinned(s.Pins, cs.PeerCertificates[0])
		}
	}
	tr := jsonrpc.NewTransport(tc, nil)
	return &Client{rpc: &jsonrpc.Client{URL: s.Node, HTTP: &http.Client{Transport: tr}}, timeout: s.Timeout.D()}
}

// Instrument times every call from now on into calls, by method (without the operator) and
// result. Call it before the client's first call.
func (c *Client) Instrument(calls *metrics.Calls) { c.calls = calls }

// Call invokes operator.method with params and decodes the result into result (may be nil). It
// gives up after the configured timeout or when ctx ends. Errors are *jsonrpc.Error.
func (c *Client) Call(ctx context.Context, operator, method string, params, result any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	err := c.rpc.Call(ctx, operator+"."+method, params, result)
	c.observe(method, start, err)
	return err
}

// CallRaw is Call returning the undecoded result.
func (c *Client) CallRaw(ctx context.Context, operator, method string, params any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	raw, err := c.rpc.CallRaw(ctx, operator+"."+method, params)
	c.observe(method, start, err)
	return raw, err
}

func (c *Client) observe(method string, start time.Time, err error) {
	if c.calls != nil {
		c.calls.Observe(method, time.Since(start), err)
	}
}

// Close drops idle connections to the node.
func (c *Client) Close() { c.rpc.HTTP.CloseIdleConnections() }

// pinned checks leaf against the node's pins (none: any certificate for the name).
func pinned(pins []string, leaf *x509.Certificate) error {
	if len(pins) == 0 || slices.Contains(pins, directory.Fingerprint(leaf)) {
		return nil
	}
	return fmt.Errorf("the node's certificate %s is not one of eps.pins", directory.Fingerprint(leaf))
}

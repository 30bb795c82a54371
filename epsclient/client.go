package epsclient

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
)

// Client calls other operators' methods through the local node. Safe for concurrent use.
type Client struct {
	rpc     *jsonrpc.Client
	timeout time.Duration
}

// NewClient builds a client for the node at s.Node, presenting id (this operator's certificate,
// whose name the node checks) and verifying the node as operator. Zero settings take their
// defaults.
func NewClient(s Settings, id *config.Identity, operator string) *Client {
	s = s.WithDefaults()
	tr := jsonrpc.NewTransport(id.ClientConfig(operator), nil)
	return &Client{rpc: &jsonrpc.Client{URL: s.Node, HTTP: &http.Client{Transport: tr}}, timeout: s.Timeout.D()}
}

// Call invokes operator.method with params and decodes the result into result (may be nil). It
// gives up after the configured timeout or when ctx ends. Errors are *jsonrpc.Error.
func (c *Client) Call(ctx context.Context, operator, method string, params, result any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.rpc.Call(ctx, operator+"."+method, params, result)
}

// CallRaw is Call returning the undecoded result.
func (c *Client) CallRaw(ctx context.Context, operator, method string, params any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.rpc.CallRaw(ctx, operator+"."+method, params)
}

// Close drops idle connections to the node.
func (c *Client) Close() { c.rpc.HTTP.CloseIdleConnections() }

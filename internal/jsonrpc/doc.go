// Package jsonrpc holds the JSON-RPC 2.0 messages, error codes and HTTP plumbing shared by the EPS
// node and the proxies' EPS client: reading a size-capped request, writing a response, and a
// keep-alive client.
//
// Typical usage on the server side:
//
//	req, rpcErr := jsonrpc.ReadRequest(w, r, jsonrpc.MaxBody)
//	if rpcErr != nil { jsonrpc.WriteError(w, nil, rpcErr); return }
//	jsonrpc.WriteResult(w, req.ID, result)
//
// and on the client side:
//
//	c := &jsonrpc.Client{URL: "https://node:5544/jsonrpc", HTTP: httpClient}
//	err := c.Call(ctx, "public-proxy-1.ga.getAnnouncements", struct{}{}, &out)
//
// It knows nothing of routing, directories or proxies.
package jsonrpc

package eps

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"epsproxy/internal/jsonrpc"
)

// Client is the `_client` object a node adds to every call it delivers: the caller's name and
// directory entry.
type Client struct {
	Name  string          `json:"name"`
	Entry json.RawMessage `json:"entry"`
}

// deliver posts a call to this operator's service with params._client set to caller, and times
// it (Metrics).
func (n *Node) deliver(ctx context.Context, caller, method string, params, id json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	start := time.Now()
	raw, e := n.post(ctx, caller, method, params, id)
	if n.deliveries != nil {
		var err error
		if e != nil {
			err = e
		}
		n.deliveries.Observe(method, time.Since(start), err)
	}
	return raw, e
}

// post is deliver's call itself.
func (n *Node) post(ctx context.Context, caller, method string, params, id json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	svc := n.svc.Load() // the call finishes on this one, whatever Reload puts in its place
	if svc == nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeUnreachable, "%s has no service endpoint configured", n.name)
	}
	withClient, e := n.setClient(caller, params)
	if e != nil {
		return nil, e
	}
	if limit, ok := n.admit(); !ok {
		return nil, jsonrpc.Errorf(jsonrpc.CodeOverloaded, "%s is delivering as many calls as it takes at once (max_inflight %d)", n.name, limit)
	}
	defer n.inflight.Add(-1)
	body, err := json.Marshal(&jsonrpc.Request{JSONRPC: jsonrpc.Version, Method: method, Params: withClient, ID: id})
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "encoding the call: %v", err)
	}
	raw, err := svc.post(ctx, body)
	if err != nil {
		e := jsonrpc.AsError(err)
		if e.Code == jsonrpc.CodeUnreachable || e.Code == jsonrpc.CodeTimeout {
			e = &jsonrpc.Error{Code: e.Code, Message: fmt.Sprintf("service of %s: %s", n.name, e.Message)}
		}
		return nil, e
	}
	return raw, nil
}

// admit counts one more call in flight, unless as many as the max_inflight in force are in flight
// already; it returns that cap. The count is raised only if it has not changed since it was
// compared with the cap (compare-and-swap): a refused call never holds a slot, not even for a
// moment, so it cannot make another call be refused. A cap lowered by Reload admits nothing until
// the calls in flight are fewer than it. The caller decrements n.inflight when an admitted call
// ends.
func (n *Node) admit() (limit int64, ok bool) {
	for {
		cur, limit := n.inflight.Load(), n.maxInflight.Load()
		if cur >= limit {
			return limit, false
		}
		if n.inflight.CompareAndSwap(cur, cur+1) {
			return limit, true
		}
	}
}

// setClient replaces params._client with the node's own statement of who called.
func (n *Node) setClient(caller string, params json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	fields := map[string]json.RawMessage{}
	if len(params) > 0 && string(params) != "null" {
		if err := json.Unmarshal(params, &fields); err != nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "params must be an object: %v", err)
		}
	}
	cl, err := n.clientObject(caller)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "%v", err)
	}
	fields["_client"] = cl
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "encoding params: %v", err)
	}
	return out, nil
}

// clientObject encodes {"name", "entry"} once per caller; Reload, which may change the entries,
// clears what it keeps.
func (n *Node) clientObject(caller string) (json.RawMessage, error) {
	if v, ok := n.ids.Load(caller); ok {
		return v.(json.RawMessage), nil
	}
	e := n.directory().Entry(caller)
	if e == nil {
		return nil, fmt.Errorf("caller %q is not in the directory", caller)
	}
	entry, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(Client{Name: caller, Entry: entry})
	if err != nil {
		return nil, err
	}
	n.ids.Store(caller, json.RawMessage(raw))
	return raw, nil
}

package eps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
)

// serveLocal handles a call from this operator's own service: "<operator>.<method>". The caller
// is checked before the body is read: the operator's own certificate, by its exact name and, when
// the directory pins the operator's certificates, one of those.
func (n *Node) serveLocal(w http.ResponseWriter, r *http.Request) {
	name, leaf, err := config.VerifiedOperator(r.TLS)
	if err == nil && name != n.name {
		err = fmt.Errorf("the client certificate is for %q", name)
	}
	if err == nil {
		err = n.directory().Pinned(n.name, leaf)
	}
	if err != nil {
		n.log.Warn("local call refused", "remote", r.RemoteAddr, "err", err)
		jsonrpc.Refuse(w, r, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "the local API of %s serves only its own operator: %v", n.name, err))
		return
	}
	req := jsonrpc.Accept(w, r, jsonrpc.MaxBody)
	if req == nil {
		return
	}
	id := req.ID
	i := strings.LastIndexByte(req.Method, '.')
	if i <= 0 || i == len(req.Method)-1 {
		jsonrpc.WriteError(w, id, jsonrpc.Errorf(jsonrpc.CodeInvalidRequest, "method %q: want <operator>.<method>", req.Method))
		return
	}
	operator, method := req.Method[:i], req.Method[i+1:]
	ctx, cancel := n.callContext(w, r)
	defer cancel()
	var (
		raw json.RawMessage
		e   *jsonrpc.Error
	)
	switch {
	case operator != n.name:
		raw, e = n.forward(ctx, operator, method, req.Params, id)
	case method == "_ping":
		jsonrpc.WriteResult(w, id, n.ping())
		return
	case method == directory.LookupMethod:
		res, e := n.lookup(req.Params)
		if e != nil {
			jsonrpc.WriteError(w, id, e)
			return
		}
		jsonrpc.WriteResult(w, id, res)
		return
	default:
		raw, e = n.deliver(ctx, n.name, method, req.Params, id)
	}
	if e != nil {
		n.log.Debug("call failed", "method", req.Method, "code", e.Code, "err", e.Message)
		jsonrpc.WriteError(w, id, e)
		return
	}
	jsonrpc.WriteRaw(w, id, raw)
}

// lookup answers the built-in directory lookup for the node's own operator.
func (n *Node) lookup(params json.RawMessage) (directory.LookupResult, *jsonrpc.Error) {
	var ps directory.LookupParams
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ps); err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "params of %s: %v", directory.LookupMethod, err)
	}
	if len(ps.Operators) > directory.MaxLookup {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "at most %d operators per lookup", directory.MaxLookup)
	}
	out := directory.LookupResult{}
	for _, op := range ps.Operators {
		out[op] = n.directory().Entry(op)
	}
	return out, nil
}

// Ping is the result of the built-in _ping method: who answered and since when.
type Ping struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	Since   time.Time `json:"since"`
}

func (n *Node) ping() Ping {
	return Ping{Name: n.name, Version: config.Version(), Time: time.Now().UTC(), Since: n.start.UTC()}
}

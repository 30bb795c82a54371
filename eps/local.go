package eps

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
)

// serveLocal handles a call from this operator's own service: "<operator>.<method>".
func (n *Node) serveLocal(w http.ResponseWriter, r *http.Request) {
	req := jsonrpc.Accept(w, r, jsonrpc.MaxBody)
	if req == nil {
		return
	}
	id := req.ID
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		jsonrpc.WriteError(w, id, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "the local API requires the client certificate of %s", n.name))
		return
	}
	if err := r.TLS.VerifiedChains[0][0].VerifyHostname(n.name); err != nil {
		jsonrpc.WriteError(w, id, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "the local API of %s serves only its own operator: the client certificate is for %q", n.name, r.TLS.VerifiedChains[0][0].Subject.CommonName))
		return
	}
	i := strings.LastIndexByte(req.Method, '.')
	if i <= 0 || i == len(req.Method)-1 {
		jsonrpc.WriteError(w, id, jsonrpc.Errorf(jsonrpc.CodeInvalidRequest, "method %q: want <operator>.<method>", req.Method))
		return
	}
	operator, method := req.Method[:i], req.Method[i+1:]
	ctx, cancel := context.WithTimeout(r.Context(), n.s.CallTimeout.D())
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

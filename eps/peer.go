package eps

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
)

// peerTransport dials other nodes by operator name: URLs are https://<operator>/..., the dialer
// looks the operator's address up in the directory, and TLS verifies the certificate against the
// operator name (and the directory's pins). HTTP/2 keeps one multiplexed connection per peer.
func (n *Node) peerTransport() *http.Transport {
	tc := n.id.ClientConfig("")
	tc.NextProtos = []string{"h2"}
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer sent no certificate")
		}
		name, err := config.OperatorName(cs.PeerCertificates[0])
		if err != nil {
			return err
		}
		if name != cs.ServerName {
			return fmt.Errorf("the node reached for %q is %q", cs.ServerName, name)
		}
		return n.directory().Pinned(cs.ServerName, cs.PeerCertificates[0])
	}
	d := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	return jsonrpc.NewTransport(tc, func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		e := n.directory().Entry(host)
		if e == nil || e.Node.Address == "" {
			return nil, fmt.Errorf("the directory has no node address for %q", host)
		}
		return d.DialContext(ctx, network, e.Node.Address)
	})
}

// forward sends a call for operator to that operator's node and returns its raw result.
func (n *Node) forward(ctx context.Context, operator, method string, params, id json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	e := n.directory().Entry(operator)
	if e == nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeNotFound, "unknown operator %q", operator)
	}
	if e.Node.Address == "" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeUnreachable, "operator %q has no node address in the directory", operator)
	}
	body, err := json.Marshal(&jsonrpc.Request{JSONRPC: jsonrpc.Version, Method: method, Params: params, ID: id})
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternal, "encoding the call: %v", err)
	}
	c := jsonrpc.Client{URL: "https://" + operator + peerPath, HTTP: n.peers}
	raw, err := c.Post(ctx, body)
	if err != nil {
		e := jsonrpc.AsError(err)
		if e.Code == jsonrpc.CodeUnreachable || e.Code == jsonrpc.CodeTimeout {
			e = &jsonrpc.Error{Code: e.Code, Message: fmt.Sprintf("node of %s: %s", operator, e.Message)}
		}
		return nil, e
	}
	return raw, nil
}

// servePeer handles a call from another node: identify the caller by its certificate, check the
// directory, deliver to this operator's service.
//
// The caller is identified before the body is read.
func (n *Node) servePeer(w http.ResponseWriter, r *http.Request) {
	_, leaf, err := config.VerifiedOperator(r.TLS)
	caller := ""
	if leaf != nil {
		caller, err = n.directory().Identify(leaf)
	}
	if err != nil {
		n.log.Warn("peer call refused", "remote", r.RemoteAddr, "err", err)
		jsonrpc.Refuse(w, r, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "%v", err))
		return
	}
	req := jsonrpc.Accept(w, r, jsonrpc.MaxBody)
	if req == nil {
		return
	}
	id := req.ID
	ctx, cancel := n.callContext(w, r)
	defer cancel()
	if req.Method == "_ping" {
		jsonrpc.WriteResult(w, id, n.ping())
		return
	}
	if err := n.directory().CanCall(caller, n.name, req.Method); err != nil {
		n.log.Warn("peer call refused", "caller", caller, "method", req.Method, "err", err)
		jsonrpc.WriteError(w, id, directoryError(err))
		return
	}
	raw, e := n.deliver(ctx, caller, req.Method, req.Params, id)
	if e != nil {
		jsonrpc.WriteError(w, id, e)
		return
	}
	jsonrpc.WriteRaw(w, id, raw)
}

func directoryError(err error) *jsonrpc.Error {
	switch {
	case errors.Is(err, directory.ErrNoSuchMethod):
		return jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "%v", err)
	case errors.Is(err, directory.ErrUnknownOperator):
		return jsonrpc.Errorf(jsonrpc.CodeNotFound, "%v", err)
	default:
		return jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "%v", err)
	}
}

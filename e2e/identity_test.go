package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/chain"
	"epsproxy/internal/pki"
)

// issueFromDevCA writes a certificate from the chain's own CA under file.crt/.key in the certs
// directory, so rpcClient can present it.
func issueFromDevCA(t *testing.T, c *chain.Chain, file, commonName string, dnsNames ...string) {
	t.Helper()
	certs := filepath.Join(c.Dir, "settings", "dev", "certs")
	ca, err := pki.LoadCA(filepath.Join(certs, pki.RootCertFile), filepath.Join(certs, pki.RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := ca.Issue(commonName, dnsNames, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, file+".crt"), crt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, file+".key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// listener is one TLS listener of the signaling network and the operator it serves as.
type listener struct{ what, addr, path, server string }

// signalingListeners are the six: each node's local API and peer link, each proxy's EPS endpoint.
func signalingListeners(c *chain.Chain) []listener {
	p := c.Ports
	return []listener{
		{"public node, local API", p.PublicNodeLocal, "/jsonrpc", publicOp},
		{"private node, local API", p.PrivateNodeLocal, "/jsonrpc", privateOp},
		{"public node, peer link", p.PublicNodePeer, "/eps/v1/call", publicOp},
		{"private node, peer link", p.PrivateNodePeer, "/eps/v1/call", privateOp},
		{"public proxy, EPS endpoint", p.PublicEPS, "/jsonrpc", publicOp},
		{"private proxy, EPS endpoint", p.PrivateEPS, "/jsonrpc", privateOp},
	}
}

// Certificates the network's CA issued but that are no operator's identity: a wildcard, and one
// naming two operators. Every listener of the signaling network refuses them, where before a
// wildcard passed for its own operator at the local APIs and the proxies' endpoints, and a
// two-name certificate passed at a peer link for whichever name the directory knew first.
func TestOnlyExactOperatorCertificatesAreIdentities(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	issueFromDevCA(t, c, "wildcard", "wild.ga", "*.ga")
	issueFromDevCA(t, c, "two-names", publicOp, publicOp, privateOp)
	startAll(t, c)
	for _, e := range signalingListeners(c) {
		for _, cert := range []string{"wildcard", "two-names"} {
			at := rpcEnd{rpcClient(t, c, cert, e.server), "https://" + e.addr + e.path}
			body := rpcCall(publicOp+".getAnnouncements", obj{"_client": obj{"name": e.server}})
			wantError(t, e.what+" with the "+cert+" certificate", at.post(t, body), 403)
		}
	}
	// The chain still serves.
	waitGet(t, c, chain.Domain)
}

// A caller without a certificate is answered before the server reads its body: it announces
// 50 MB, sends none of it, and still gets its 403 at once, on a connection the server closes.
func TestCallersAreRefusedBeforeTheBodyIsRead(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	startAll(t, c)
	for _, e := range signalingListeners(c) {
		conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: c.Roots, ServerName: e.server, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("%s: %v", e.what, err)
		}
		// Well inside the servers' 10 s read timeout: an answer in time was not waiting for a body.
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		req := "POST " + e.path + " HTTP/1.1\r\nHost: " + e.server + "\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatalf("%s: %v", e.what, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%s: no answer without the body: %v", e.what, err)
			conn.Close()
			continue
		}
		var a rpcAnswer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Errorf("%s: not a JSON-RPC answer: %v", e.what, err)
		} else {
			wantError(t, e.what+", no certificate, body unsent", a, 403, "no client certificate")
		}
		if !resp.Close && !strings.EqualFold(resp.Header.Get("Connection"), "close") {
			t.Errorf("%s: the refused connection stays open for more", e.what)
		}
		conn.Close()
	}
}

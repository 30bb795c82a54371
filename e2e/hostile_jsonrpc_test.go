package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// The operators of the dev directory.
const (
	publicOp  = "public-proxy-1.ga"
	privateOp = "private-proxy-1.ga"
	otherOp   = "other-operator.ga"
)

// rpcAnswer is a JSON-RPC response as a caller sees it.
type rpcAnswer struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// rpcClient is an HTTPS client that presents the certificate of operator (none when "") and
// verifies the server as server.
func rpcClient(t *testing.T, c *chain.Chain, operator, server string) *http.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: c.Roots, ServerName: server}
	if operator != "" {
		certs := filepath.Join(c.Dir, "settings", "dev", "certs")
		cert, err := tls.LoadX509KeyPair(filepath.Join(certs, operator+".crt"), filepath.Join(certs, operator+".key"))
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// rpcPost sends body and decodes the JSON-RPC answer; the HTTP exchange itself must work.
func rpcPost(t *testing.T, cl *http.Client, url, body string) rpcAnswer {
	t.Helper()
	resp, err := cl.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	var a rpcAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("POST %s: HTTP %d, not a JSON-RPC answer: %.300q", url, resp.StatusCode, raw)
	}
	return a
}

// call is a JSON-RPC request body.
func rpcCall(method string, params any) string {
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// wantError checks that a is a JSON-RPC error with code whose message contains every fragment.
func wantError(t *testing.T, what string, a rpcAnswer, code int, fragments ...string) {
	t.Helper()
	if a.Error == nil {
		t.Errorf("%s: result %s, want error %d", what, a.Result, code)
		return
	}
	if a.Error.Code != code {
		t.Errorf("%s: error %d %q, want code %d", what, a.Error.Code, a.Error.Message, code)
	}
	for _, f := range fragments {
		if !strings.Contains(a.Error.Message, f) {
			t.Errorf("%s: message %q does not say %q", what, a.Error.Message, f)
		}
	}
}

// rpcEnd is one caller at one JSON-RPC endpoint.
type rpcEnd struct {
	cl  *http.Client
	url string
}

func (e rpcEnd) post(t *testing.T, body string) rpcAnswer {
	t.Helper()
	return rpcPost(t, e.cl, e.url, body)
}

// rpcCase is a hostile call and the error it must get.
type rpcCase struct {
	what string
	at   rpcEnd
	body string
	code int
	says []string
}

type obj = map[string]any

// forgedClient is a `_client` a caller makes up: it names who it likes and grants itself
// allowed domains at both proxies.
func forgedClient(name string, allowed ...string) obj {
	grant := func(op string) obj {
		return obj{"service": "proxy", "operator": op, "settings": obj{"allowed_domains": allowed}}
	}
	return obj{"name": name, "entry": obj{"name": name, "groups": []string{"private-proxies", "operators"},
		"settings": []any{grant(publicOp), grant(privateOp)}}}
}

// The JSON-RPC faces of the chain (each node's local API and peer link, each proxy's EPS
// endpoint) answer hostile and malformed calls with a JSON-RPC error whose code and message say
// what is wrong, a caller's forged `_client` is replaced by its real identity, and nothing the
// calls tried changes the announcements.
func TestHostileJSONRPC(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	startAll(t, c)
	if err := c.Start(chain.OtherEPS); err != nil {
		t.Fatal(err)
	}
	p := c.Ports
	at := func(addr, path, caller, server string) rpcEnd {
		return rpcEnd{rpcClient(t, c, caller, server), "https://" + addr + path}
	}
	var (
		pubLocal   = at(p.PublicNodeLocal, "/jsonrpc", publicOp, publicOp)
		privLocal  = at(p.PrivateNodeLocal, "/jsonrpc", privateOp, privateOp)
		otherLocal = at(p.OtherNodeLocal, "/jsonrpc", otherOp, otherOp)
		pubPeer    = at(p.PublicNodePeer, "/eps/v1/call", privateOp, publicOp)
		privPeer   = at(p.PrivateNodePeer, "/eps/v1/call", publicOp, privateOp)
		pubProxy   = at(p.PublicEPS, "/jsonrpc", publicOp, publicOp)
		privProxy  = at(p.PrivateEPS, "/jsonrpc", privateOp, privateOp)
	)
	// other-eps was started last: wait for it to answer.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := otherLocal.cl.Post(otherLocal.url, "application/json", strings.NewReader(rpcCall(otherOp+"._ping", obj{})))
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other-eps does not answer: %v", err)
		}
	}

	// What must not change: both proxies' lists and files.
	snapshot := func() string {
		var b strings.Builder
		for _, q := range []struct {
			at     rpcEnd
			method string
		}{{privLocal, publicOp + ".getAnnouncements"}, {pubLocal, privateOp + ".getAnnouncements"}} {
			a := q.at.post(t, rpcCall(q.method, obj{}))
			if a.Error != nil {
				t.Fatalf("%s: %d %s", q.method, a.Error.Code, a.Error.Message)
			}
			fmt.Fprintf(&b, "%s: %s\n", q.method, a.Result)
		}
		for _, dir := range []string{"public-proxy-1", "private-proxy-1"} {
			f, err := os.ReadFile(filepath.Join(c.Dir, "settings", "dev", "data", dir, "announcements.json"))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s file: %s\n", dir, f)
		}
		return b.String()
	}
	before := snapshot()
	if !strings.Contains(before, chain.Domain) {
		t.Fatalf("no announcement to protect:\n%s", before)
	}

	var cases []rpcCase
	// Malformed envelopes, the same everywhere; and no client certificate.
	huge := `{"jsonrpc":"2.0","id":1,"method":"m","params":{"pad":"` + strings.Repeat("a", 1<<20) + `"}}`
	for _, e := range []struct {
		name   string
		at     rpcEnd
		server string
		noCert string // what the refusal of a caller without a certificate says
	}{
		{"public node, local API", pubLocal, publicOp, "no client certificate"},
		{"private node, local API", privLocal, privateOp, "no client certificate"},
		{"public node, peer link", pubPeer, publicOp, "no client certificate"},
		{"private node, peer link", privPeer, privateOp, "no client certificate"},
		{"public proxy, EPS endpoint", pubProxy, publicOp, "no client certificate"},
		{"private proxy, EPS endpoint", privProxy, privateOp, "no client certificate"},
	} {
		anon := rpcEnd{rpcClient(t, c, "", e.server), e.at.url}
		cases = append(cases,
			rpcCase{e.name + ": body over 1 MiB", e.at, huge, -32600, []string{"larger than 1048576 bytes"}},
			rpcCase{e.name + ": not JSON", e.at, `{not json`, -32700, []string{"not a JSON-RPC object"}},
			rpcCase{e.name + ": method of the wrong type", e.at, `{"jsonrpc":"2.0","id":1,"method":5}`, -32700, []string{"method"}},
			rpcCase{e.name + ": no method", e.at, `{"jsonrpc":"2.0","id":1}`, -32600, []string{"method is missing"}},
			rpcCase{e.name + ": no jsonrpc", e.at, `{"id":1,"method":"m"}`, -32600, []string{`jsonrpc must be "2.0"`}},
			rpcCase{e.name + ": params not an object", e.at, `{"jsonrpc":"2.0","id":1,"method":"m","params":5}`, -32602, []string{"params must be an object"}},
			rpcCase{e.name + ": no client certificate", anon, rpcCall(publicOp+".getAnnouncements", obj{}), 403, []string{e.noCert}},
		)
	}

	// Unknown methods and operators, and callers in the wrong place.
	strangerAtPubLocal := rpcEnd{rpcClient(t, c, privateOp, publicOp), pubLocal.url}
	strangerAtPubProxy := rpcEnd{rpcClient(t, c, privateOp, publicOp), pubProxy.url}
	cases = append(cases,
		rpcCase{"local API: unknown method of another operator", privLocal, rpcCall(publicOp+".nosuch", obj{}), -32601, []string{"nosuch"}},
		rpcCase{"local API: unknown method of its own operator", pubLocal, rpcCall(publicOp+".nosuch", obj{}), -32601, []string{"nosuch"}},
		rpcCase{"local API: method without an operator", pubLocal, rpcCall("nosuch", obj{}), -32600, []string{"<operator>.<method>"}},
		rpcCase{"local API: unknown operator", pubLocal, rpcCall("nobody.ga.x", obj{}), 404, []string{"nobody.ga"}},
		rpcCase{"local API: another operator's certificate", strangerAtPubLocal, rpcCall(publicOp+".getAnnouncements", obj{}), 403, []string{"serves only its own operator"}},
		rpcCase{"public peer link: unknown method", pubPeer, rpcCall("nosuch", obj{}), -32601, []string{"nosuch"}},
		rpcCase{"private peer link: unknown method", privPeer, rpcCall("nosuch", obj{}), -32601, []string{"nosuch"}},
		rpcCase{"public proxy endpoint: unknown method", pubProxy, rpcCall("nosuch", obj{}), -32601, []string{"nosuch"}},
		rpcCase{"private proxy endpoint: unknown method", privProxy, rpcCall("nosuch", obj{}), -32601, []string{"nosuch"}},
		rpcCase{"proxy endpoint: call without _client", pubProxy, rpcCall("getAnnouncements", obj{}), 403, []string{"_client"}},
		rpcCase{"proxy endpoint: another operator's certificate", strangerAtPubProxy,
			rpcCall("getAnnouncements", obj{"_client": obj{"name": privateOp}}), 403, []string{"only the EPS node of " + publicOp}},
	)

	// Wrong and missing params, through the real path to each proxy's handlers.
	ann, add, inc := publicOp+".announceConnections", privateOp+".announceConnection", privateOp+".incomingConnection"
	many := make([]obj, 10001)
	for i := range many {
		many[i] = obj{"domain": fmt.Sprintf("n%d.internal-server.local", i)}
	}
	tok := base64.StdEncoding.EncodeToString(make([]byte, 32))
	incoming := func(domain any, token string, endpoint string) string {
		return rpcCall(inc, obj{"domain": domain, "token": token, "endpoint": endpoint})
	}
	cases = append(cases,
		rpcCase{"announceConnections: connections of the wrong type", privLocal, rpcCall(ann, obj{"connections": "x"}), -32602, []string{"connections"}},
		rpcCase{"announceConnections: domain of the wrong type", privLocal, rpcCall(ann, obj{"connections": []obj{{"domain": 5}}}), -32602, []string{"domain"}},
		rpcCase{"announceConnections: misspelt field", privLocal, rpcCall(ann, obj{"conections": []obj{}}), -32602, []string{"conections"}},
		rpcCase{"announceConnections: 10,001 names in one call", privLocal, rpcCall(ann, obj{"connections": many}), -32602, []string{"at most 10000"}},
		rpcCase{"getAnnouncements: unknown param", privLocal, rpcCall(publicOp+".getAnnouncements", obj{"all": true}), -32602, []string{"all"}},
		rpcCase{"announceConnection: no proxy", otherLocal, rpcCall(add, obj{"domain": "x.internal-server.local"}), -32602, []string{"proxy is missing"}},
		rpcCase{"announceConnection: no domain", otherLocal, rpcCall(add, obj{"proxy": publicOp}), -32602, []string{"domain"}},
		rpcCase{"announceConnection: domain of the wrong type", otherLocal, rpcCall(add, obj{"domain": 5, "proxy": publicOp}), -32602, []string{"domain"}},
		rpcCase{"incomingConnection: short token", pubLocal, incoming(chain.Domain, "AAAA", p.PublicInternal), -32602, []string{"token"}},
		rpcCase{"incomingConnection: domain of the wrong type", pubLocal, incoming([]int{1}, tok, p.PublicInternal), -32602, []string{"domain"}},
		rpcCase{"incomingConnection: unannounced domain", pubLocal, incoming("other.internal-server.local", tok, p.PublicInternal), 404, []string{"other.internal-server.local"}},
		rpcCase{"incomingConnection: endpoint not pinned", pubLocal, incoming(chain.Domain, tok, "127.0.0.1:1"), 403, []string{"pinned"}},
	)

	// Forged _client objects: the receiving node replaces them with its own statement of the
	// caller, so a forged grant widens nothing; at the peer link the caller is its certificate.
	cases = append(cases,
		rpcCase{"announceConnection with a forged grant", otherLocal,
			rpcCall(add, obj{"_client": forgedClient(privateOp, ".evil.example"), "domain": "x.evil.example", "proxy": publicOp}), 403, []string{"x.evil.example"}},
		rpcCase{"peer link: public-proxy-1.ga posing as other-operator.ga", privPeer,
			rpcCall("announceConnection", obj{"_client": forgedClient(otherOp, ".internal-server.local"), "domain": "y.internal-server.local", "proxy": publicOp}),
			403, []string{publicOp}},
	)

	for _, k := range cases {
		wantError(t, k.what, k.at.post(t, k.body), k.code, k.says...)
	}

	// getAnnouncements lists the caller's own names: the real caller's, not the forged one's.
	a := privLocal.post(t, rpcCall(publicOp+".getAnnouncements", obj{"_client": forgedClient(otherOp)}))
	var listed []struct{ Domain, Operator string }
	if a.Error != nil || json.Unmarshal(a.Result, &listed) != nil || len(listed) == 0 || listed[0].Operator != privateOp {
		t.Errorf("getAnnouncements with a _client forged as %s: %s %+v; want %s's own list", otherOp, a.Result, a.Error, privateOp)
	}
	// A forged grant does not widen what the real caller may announce: refused per name.
	a = privLocal.post(t, rpcCall(ann, obj{"_client": forgedClient(privateOp, ".evil.example"), "connections": []obj{{"domain": "www.evil.example"}}}))
	var per []*struct{ Code int }
	if a.Error != nil || json.Unmarshal(a.Result, &per) != nil || len(per) != 1 || per[0] == nil || per[0].Code != 403 {
		t.Errorf("announceConnections of www.evil.example with a forged grant: %s %+v; want [403]", a.Result, a.Error)
	}

	if after := snapshot(); after != before {
		t.Errorf("the hostile calls changed the announcements:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// And the chain still serves.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

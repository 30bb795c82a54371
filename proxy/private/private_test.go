package private

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
)

func call(method, caller string, allowed []string, params any) *epsclient.Call {
	e := directory.Entry{Name: caller}
	if allowed != nil {
		e.Settings = []directory.Setting{{Service: "proxy", Operator: self, Settings: map[string]any{"allowed_domains": allowed}}}
	}
	raw, _ := json.Marshal(params)
	return &epsclient.Call{Method: method, Params: raw, Caller: epsclient.Caller{Name: caller, Entry: e}}
}

func code(err error) int {
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestIncomingConnectionIsCheckedBeforeAnyDial(t *testing.T) {
	s := Settings{InternalEndpoint: "127.0.0.1:1", Announce: []Announcement{{Domain: "App.Example", Proxy: "pub.test"}},
		Endpoints: map[string]string{"pub.test": "127.0.0.1:9999"}, Queue: 1}
	p := newProxy(t, s, t.TempDir())
	tok := base64.StdEncoding.EncodeToString(make([]byte, 32))
	ctx := context.Background()
	cases := []struct {
		name   string
		caller string
		params map[string]string
		want   int
	}{
		{"not announced", "pub.test", map[string]string{"domain": "other.example", "token": tok, "endpoint": "127.0.0.1:9999"}, 404},
		{"announced to another public proxy", "pub2.test", map[string]string{"domain": "app.example", "token": tok, "endpoint": "127.0.0.1:9999"}, 404},
		{"endpoint not the pinned one", "pub.test", map[string]string{"domain": "app.example", "token": tok, "endpoint": "10.1.2.3:22"}, 403},
		{"short token", "pub.test", map[string]string{"domain": "app.example", "token": base64.StdEncoding.EncodeToString(make([]byte, 31)), "endpoint": "127.0.0.1:9999"}, jsonrpc.CodeInvalidParams},
		{"token not base64", "pub.test", map[string]string{"domain": "app.example", "token": "!!", "endpoint": "127.0.0.1:9999"}, jsonrpc.CodeInvalidParams},
		{"endpoint without port", "pub.test", map[string]string{"domain": "app.example", "token": tok, "endpoint": "localhost"}, jsonrpc.CodeInvalidParams},
	}
	for _, c := range cases {
		if _, err := epsclient.Typed(p.incomingConnection)(ctx, call("incomingConnection", c.caller, nil, c.params)); code(err) != c.want {
			t.Errorf("%s: %v, want code %d", c.name, err, c.want)
		}
	}
	if len(p.dials) != 0 {
		t.Fatalf("a refused call queued a dial")
	}
	good := map[string]string{"domain": "APP.example.", "token": tok, "endpoint": "127.0.0.1:9999"}
	if _, err := epsclient.Typed(p.incomingConnection)(ctx, call("incomingConnection", "pub.test", nil, good)); err != nil {
		t.Fatalf("announced name from its public proxy: %v", err)
	}
	// The queue (1) is full and no worker runs: the next is refused at once, not stalled.
	if _, err := epsclient.Typed(p.incomingConnection)(ctx, call("incomingConnection", "pub.test", nil, good)); code(err) != jsonrpc.CodeOverloaded {
		t.Errorf("full dial queue: %v, want 503", err)
	}
}

// A dead internal server costs the client nothing but a prompt close: the token is presented and
// the connection to the public side closed at once.
func TestDeadInternalServerClosesTheDialBackAtOnce(t *testing.T) {
	dead := testnet.FreeAddr(t) // nothing listens here
	p := newProxy(t, Settings{InternalEndpoint: dead}, t.TempDir())
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var tok [32]byte
	tok[0] = 7
	go p.dialBack(dialJob{domain: "app.example", endpoint: pub.Addr().String(), target: dead, token: tok})
	c, err := pub.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the dial-back was not closed: %v", err)
	}
	if len(got) != 32 || got[0] != 7 {
		t.Errorf("public side got %d bytes %v, want the 32-byte token then EOF", len(got), got)
	}
}

func TestAnnounceConnectionNeedsAGrantAndPersists(t *testing.T) {
	dir := t.TempDir()
	p := newProxy(t, Settings{InternalEndpoint: "127.0.0.1:8888"}, dir)
	ctx := context.Background()
	params := map[string]string{"domain": "api.a.example", "proxy": "pub.test"}
	if _, err := epsclient.Typed(p.announceConnection)(ctx, call("announceConnection", "op.test", nil, params)); code(err) != 403 {
		t.Errorf("no grant: %v, want 403", err)
	}
	if _, err := epsclient.Typed(p.announceConnection)(ctx, call("announceConnection", "op.test", []string{".b.example"}, params)); code(err) != 403 || !strings.Contains(err.Error(), "api.a.example") {
		t.Errorf("name outside the grant: %v, want 403", err)
	}
	if _, err := epsclient.Typed(p.announceConnection)(ctx, call("announceConnection", "op.test", []string{".a.example"}, map[string]string{"domain": "x.a.example", "proxy": self})); code(err) != 400 {
		t.Errorf("announcing to itself: %v, want 400", err)
	}
	if _, err := epsclient.Typed(p.announceConnection)(ctx, call("announceConnection", "op.test", []string{".a.example"}, params)); err != nil {
		t.Fatal(err)
	}
	// A fresh proxy on the same data directory restores it.
	q := newProxy(t, Settings{InternalEndpoint: "127.0.0.1:8888"}, dir)
	stored, err := loadStore(q.anns.path)
	if err != nil || len(stored) != 1 || stored[0].Domain != "api.a.example" || stored[0].Proxy != "pub.test" {
		t.Fatalf("stored announcements: %v %+v", err, stored)
	}
}

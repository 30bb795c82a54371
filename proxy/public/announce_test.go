package public

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

const self = "pub.test"

func newProxy(t *testing.T) *Proxy {
	t.Helper()
	p := testnet.NewPKI(t, self)
	base := proxy.Base{Name: self, Identity: p.Identity(t, self), DataDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	base.EPS = epsclient.Settings{Node: "https://127.0.0.1:1/jsonrpc", Listen: "127.0.0.1:0"}.WithDefaults()
	px, err := New(base, Settings{TLSBind: testnet.FreeAddr(t), InternalBind: testnet.FreeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.relay.Close(); px.pool.Close() })
	return px
}

// call builds a delivered call from caller, whose directory entry grants allowed (nil: no grant).
func call(method, caller string, allowed []string, params string) *epsclient.Call {
	e := directory.Entry{Name: caller, Groups: []string{"private-proxies"}}
	if allowed != nil {
		e.Settings = []directory.Setting{{Service: "proxy", Operator: self, Settings: map[string]any{"allowed_domains": allowed}}}
	}
	return &epsclient.Call{Method: method, Params: json.RawMessage(params), Caller: epsclient.Caller{Name: caller, Entry: e}}
}

func TestAnnounceConnections(t *testing.T) {
	p := newProxy(t)
	ctx := context.Background()
	res, err := epsclient.Typed(p.announceConnections)(ctx, call("announceConnections", "a.test", []string{".a.example"}, `{"connections": [
		{"domain": "www.a.example"}, {"domain": "WWW.B.example"}, {"domain": "*.a.example"}, {"domain": "bad..name.a.example"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	codes := codesOf(res)
	if want := []int{0, 403, 0, 400}; !equal(codes, want) {
		t.Errorf("per-item results %v, want %v", codes, want)
	}
	// Another operator cannot take a live name (409), even with the grant.
	res, _ = epsclient.Typed(p.announceConnections)(ctx, call("announceConnections", "b.test", []string{".a.example"}, `{"connections": [{"domain": "www.a.example"}]}`))
	if codes := codesOf(res); !equal(codes, []int{409}) {
		t.Errorf("taking another operator's name: %v, want [409]", codes)
	}
	// Without a grant from the directory the whole call is refused.
	_, err = epsclient.Typed(p.announceConnections)(ctx, call("announceConnections", "c.test", nil, `{"connections": [{"domain": "x.a.example"}]}`))
	if e := (*jsonrpc.Error)(nil); !errors.As(err, &e) || e.Code != 403 {
		t.Errorf("no grant: %v, want 403", err)
	}
	// Expiry more than 7 days ahead is refused per item.
	far := time.Now().Add(8 * 24 * time.Hour).Format(time.RFC3339)
	res, _ = epsclient.Typed(p.announceConnections)(ctx, call("announceConnections", "a.test", []string{".a.example"}, `{"connections": [{"domain": "late.a.example", "expires_at": "`+far+`"}]}`))
	if codes := codesOf(res); !equal(codes, []int{400}) {
		t.Errorf("far expiry: %v, want [400]", codes)
	}
	// Unknown fields are refused with a clear error, not ignored.
	_, err = epsclient.Typed(p.announceConnections)(ctx, call("announceConnections", "a.test", []string{".a.example"}, `{"conections": []}`))
	if e := (*jsonrpc.Error)(nil); !errors.As(err, &e) || e.Code != jsonrpc.CodeInvalidParams || !strings.Contains(e.Message, "conections") {
		t.Errorf("misspelt field: %v", err)
	}
	// getAnnouncements shows the caller its own names only.
	list, err := epsclient.Typed(p.getAnnouncements)(ctx, call("getAnnouncements", "a.test", nil, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	got := list.([]wire.Listed)
	if len(got) != 2 || got[0].Domain != "*.a.example" || got[1].Domain != "www.a.example" {
		t.Errorf("a.test's announcements: %+v", got)
	}
	other, _ := epsclient.Typed(p.getAnnouncements)(ctx, call("getAnnouncements", "b.test", nil, `{}`))
	if len(other.([]wire.Listed)) != 0 {
		t.Errorf("b.test sees a.test's names: %+v", other)
	}
	// Accepted names are on disk at once.
	b, err := os.ReadFile(filepath.Join(p.base.DataDir, StoreFile))
	if err != nil || !strings.Contains(string(b), "www.a.example") {
		t.Errorf("announcements file: %v %s", err, b)
	}
}

func codesOf(res any) []int {
	var out []int
	for _, e := range res.([]*jsonrpc.Error) {
		if e == nil {
			out = append(out, 0)
		} else {
			out = append(out, e.Code)
		}
	}
	return out
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

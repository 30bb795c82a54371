package private

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"epsproxy/epsclient"
	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy"
	"epsproxy/proxy/wire"
)

// An operator with a grant for a suffix must not take over what it does not own: a name the
// settings file serves (directly or through a wildcard), or a name another operator added. It
// may neither point it elsewhere nor withdraw it, on any public proxy.
func TestRunTimeNamesBelongToTheirOwner(t *testing.T) {
	s := Settings{InternalEndpoint: "127.0.0.1:8888", RuntimeTargets: []string{"127.0.0.9:9000"},
		Announce: []Announcement{{Domain: "app.a.example", Proxy: "pub.test"}, {Domain: "*.wild.a.example", Proxy: "pub.test"}}}
	p := newProxy(t, s, t.TempDir())
	ctx := context.Background()
	grant := []string{".a.example"}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	announce := func(caller string, params map[string]string) error {
		_, err := epsclient.Typed(p.announceConnection)(ctx, call(wire.AnnounceConnection, caller, grant, params))
		return err
	}
	for _, tc := range []struct {
		what   string
		params map[string]string
	}{
		{"another target for a configured name", map[string]string{"domain": "app.a.example", "proxy": "pub.test", "target": "127.0.0.9:9000"}},
		{"a configured name withdrawn", map[string]string{"domain": "app.a.example", "proxy": "pub.test", "expires_at": past}},
		{"a configured name through another public proxy", map[string]string{"domain": "app.a.example", "proxy": "pub2.test", "target": "127.0.0.9:9000"}},
		{"a name a configured wildcard serves", map[string]string{"domain": "x.wild.a.example", "proxy": "pub.test", "target": "127.0.0.9:9000"}},
	} {
		if err := announce("op.test", tc.params); code(err) != jsonrpc.CodeConflict {
			t.Errorf("%s: %v, want 409", tc.what, err)
		}
	}
	// A name op.test adds is op.test's: other.test can neither change nor withdraw it.
	if err := announce("op.test", map[string]string{"domain": "api.a.example", "proxy": "pub.test"}); err != nil {
		t.Fatal(err)
	}
	if err := announce("other.test", map[string]string{"domain": "api.a.example", "proxy": "pub.test", "target": "127.0.0.9:9000"}); code(err) != jsonrpc.CodeConflict {
		t.Errorf("another operator's name re-targeted: %v, want 409", err)
	}
	if err := announce("other.test", map[string]string{"domain": "api.a.example", "proxy": "pub.test", "expires_at": past}); code(err) != jsonrpc.CodeConflict {
		t.Errorf("another operator's name withdrawn: %v, want 409", err)
	}
	// Its owner may change it and withdraw it.
	if err := announce("op.test", map[string]string{"domain": "api.a.example", "proxy": "pub.test", "target": "127.0.0.9:9000"}); err != nil {
		t.Errorf("owner changing its target: %v", err)
	}
	got, ok := p.anns.get("api.a.example", "pub.test", time.Now())
	if !ok || got.Target != "127.0.0.9:9000" || got.Owner != "op.test" {
		t.Errorf("after the owner's change: %+v %v", got, ok)
	}
	if err := announce("op.test", map[string]string{"domain": "api.a.example", "proxy": "pub.test", "expires_at": past}); err != nil {
		t.Errorf("owner withdrawing: %v", err)
	}
	if _, ok := p.anns.get("api.a.example", "pub.test", time.Now()); ok {
		t.Errorf("withdrawn name still served")
	}
	// The configured names are as the settings file says, and the file holds no stranger's change.
	for _, name := range []string{"app.a.example", "*.wild.a.example"} {
		if a, ok := p.anns.get(name, "pub.test", time.Now()); !ok || a.Target != "" || a.Owner != "" {
			t.Errorf("%s after the attempts: %+v %v", name, a, ok)
		}
	}
	b, _ := os.ReadFile(p.anns.path)
	if strings.Contains(string(b), "9000") {
		t.Errorf("the announcements file holds a refused target: %s", b)
	}
}

// A run-time target must be one the settings allow; by default none is, and the name goes to
// the internal endpoint.
func TestRunTimeTargetsNeedTheSettingsLeave(t *testing.T) {
	ctx := context.Background()
	grant := []string{".a.example"}
	p := newProxy(t, Settings{InternalEndpoint: "127.0.0.1:8888"}, t.TempDir())
	_, err := epsclient.Typed(p.announceConnection)(ctx, call(wire.AnnounceConnection, "op.test", grant,
		map[string]string{"domain": "api.a.example", "proxy": "pub.test", "target": "127.0.0.1:22"}))
	if code(err) != jsonrpc.CodeNotAllowed || !strings.Contains(err.Error(), "runtime_targets") {
		t.Errorf("target with no runtime_targets: %v, want 403 naming the setting", err)
	}
	if _, ok := p.anns.get("api.a.example", "pub.test", time.Now()); ok {
		t.Errorf("a refused name was stored")
	}

	q := newProxy(t, Settings{InternalEndpoint: "127.0.0.1:8888", RuntimeTargets: []string{"10.1.0.0/16", "backend.internal:443"}}, t.TempDir())
	for target, want := range map[string]int{
		"10.1.2.3:8443":         0,
		"backend.internal:443":  0,
		"backend.internal:444":  jsonrpc.CodeNotAllowed,
		"10.2.0.1:8443":         jsonrpc.CodeNotAllowed,
		"127.0.0.1:8888":        jsonrpc.CodeNotAllowed,
		"[::ffff:10.1.0.1]:443": 0,
	} {
		_, err := epsclient.Typed(q.announceConnection)(ctx, call(wire.AnnounceConnection, "op.test", grant,
			map[string]string{"domain": "t.a.example", "proxy": "pub.test", "target": target}))
		if code(err) != want {
			t.Errorf("target %s: %v, want code %d", target, err, want)
		}
	}
}

// `proxy` must be a public proxy the directory knows and lets this private proxy announce to:
// a made-up one is refused, stored nowhere, and gets no standby pool.
func TestRunTimeNamesOnlyForKnownPublicProxies(t *testing.T) {
	p, nd := newProxyAndNode(t, Settings{InternalEndpoint: "127.0.0.1:8888"}, t.TempDir())
	_, err := epsclient.Typed(p.announceConnection)(context.Background(), call(wire.AnnounceConnection, "op.test", []string{".a.example"},
		map[string]string{"domain": "api.a.example", "proxy": "made-up.test"}))
	if code(err) != jsonrpc.CodeNotAllowed || !strings.Contains(err.Error(), "made-up.test") {
		t.Errorf("made-up public proxy: %v, want 403", err)
	}
	if n := len(p.anns.snapshot()); n != 0 {
		t.Errorf("%d announcements stored, want none", n)
	}
	// The name the public proxy refuses (held there by someone else) is not stored either.
	nd.mu.Lock()
	nd.taken["held.a.example"] = true
	nd.mu.Unlock()
	_, err = epsclient.Typed(p.announceConnection)(context.Background(), call(wire.AnnounceConnection, "op.test", []string{".a.example"},
		map[string]string{"domain": "held.a.example", "proxy": "pub.test"}))
	if code(err) != jsonrpc.CodeConflict {
		t.Errorf("a name the public proxy refuses: %v, want its 409", err)
	}
	if n := len(p.anns.snapshot()); n != 0 {
		t.Errorf("%d announcements stored, want none", n)
	}
}

func TestRunTimeNamesPerOperatorCap(t *testing.T) {
	p := newProxy(t, Settings{InternalEndpoint: "127.0.0.1:8888", MaxNamesPerOperator: 2}, t.TempDir())
	add := func(caller, domain string) error {
		_, err := epsclient.Typed(p.announceConnection)(context.Background(), call(wire.AnnounceConnection, caller, []string{".a.example"},
			map[string]string{"domain": domain, "proxy": "pub.test"}))
		return err
	}
	for _, d := range []string{"one.a.example", "two.a.example", "two.a.example"} { // re-announcing its own name is no new name
		if err := add("op.test", d); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	if err := add("op.test", "three.a.example"); code(err) != jsonrpc.CodeFull || !strings.Contains(err.Error(), "max_names_per_operator") {
		t.Errorf("third name: %v, want 507 naming the setting", err)
	}
	if err := add("other.test", "three.a.example"); err != nil {
		t.Errorf("another operator's first name: %v", err)
	}
}

// getAnnouncements shows each caller what concerns it, and internal targets only to their owner
// and to this proxy's own operator.
func TestGetAnnouncementsShowsWhatConcernsTheCaller(t *testing.T) {
	s := Settings{InternalEndpoint: "127.0.0.1:8888", RuntimeTargets: []string{"127.0.0.9:9000"},
		Announce: []Announcement{{Domain: "app.a.example", Proxy: "pub.test", Target: "127.0.0.7:7000"}, {Domain: "other.a.example", Proxy: "pub2.test"}}}
	p := newProxy(t, s, t.TempDir())
	ctx := context.Background()
	if _, err := epsclient.Typed(p.announceConnection)(ctx, call(wire.AnnounceConnection, "op.test", []string{".a.example"},
		map[string]string{"domain": "api.a.example", "proxy": "pub.test", "target": "127.0.0.9:9000"})); err != nil {
		t.Fatal(err)
	}
	list := func(caller string) []wire.Served {
		res, err := epsclient.Typed(p.getAnnouncements)(ctx, call(wire.GetAnnouncements, caller, nil, map[string]any{}))
		if err != nil {
			t.Fatal(err)
		}
		return res.([]wire.Served)
	}
	if got := list(self); len(got) != 3 {
		t.Errorf("own operator: %+v, want all 3", got)
	}
	pub := list("pub.test")
	if len(pub) != 2 {
		t.Fatalf("pub.test: %+v, want its 2 names", pub)
	}
	for _, a := range pub {
		if a.Proxy != "pub.test" || a.Target != "" || a.Owner != "" {
			t.Errorf("pub.test sees %+v", a)
		}
	}
	if got := list("op.test"); len(got) != 1 || got[0].Domain != "api.a.example" || got[0].Target != "127.0.0.9:9000" {
		t.Errorf("op.test: %+v, want its own name with its target", got)
	}
	if got := list("stranger.test"); len(got) != 0 {
		t.Errorf("stranger.test: %+v, want nothing", got)
	}
}

// A stored run-time name whose name the settings file now serves is dropped at start, not
// restored over the owner's.
func TestRestoreDropsNamesNowHeldByTheSettings(t *testing.T) {
	dir := t.TempDir()
	stored := []Announcement{
		{Domain: "app.a.example", Proxy: "pub2.test", Target: "127.0.0.9:9000", Owner: "op.test"},
		{Domain: "x.wild.a.example", Proxy: "pub.test", Owner: "op.test"},
		{Domain: "api.a.example", Proxy: "pub.test", Owner: "op.test"},
	}
	if err := saveStore(dir+"/"+StoreFile, stored); err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, Settings{InternalEndpoint: "127.0.0.1:8888", Standby: StandbyOff,
		Announce: []Announcement{{Domain: "app.a.example", Proxy: "pub.test"}, {Domain: "*.wild.a.example", Proxy: "pub.test"}}}, dir)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	now := time.Now()
	if _, ok := p.anns.get("app.a.example", "pub2.test", now); ok {
		t.Errorf("a configured name restored for another owner")
	}
	if _, ok := p.anns.get("x.wild.a.example", "pub.test", now); ok {
		t.Errorf("a name under a configured wildcard restored for another owner")
	}
	if a, ok := p.anns.get("api.a.example", "pub.test", now); !ok || a.Owner != "op.test" {
		t.Errorf("the owner's own name was not restored: %+v %v", a, ok)
	}
}

// Without a pin, an incomingConnection may only send the dial-back where the caller's own
// reserveConnections said, or where the settings allow: never to any host:port it names.
func TestDialBacksGoOnlyWhereTheyMay(t *testing.T) {
	victim, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	reached := make(chan struct{}, 10)
	go func() {
		for {
			c, err := victim.Accept()
			if err != nil {
				return
			}
			reached <- struct{}{}
			c.Close()
		}
	}()
	s := Settings{InternalEndpoint: "127.0.0.1:8888", Announce: []Announcement{{Domain: "app.a.example", Proxy: "pub.test"}},
		DialBackEndpoints: proxy.AddrList{"10.9.0.0/16"}}
	p := newProxy(t, s, t.TempDir())
	ctx := context.Background()
	tok := wire.Token{1}.String()
	incoming := func(endpoint string) error {
		_, err := epsclient.Typed(p.incomingConnection)(ctx, call(wire.IncomingConnection, "pub.test", nil,
			map[string]string{"domain": "app.a.example", "token": tok, "endpoint": endpoint}))
		return err
	}
	if err := incoming(victim.Addr().String()); code(err) != jsonrpc.CodeNotAllowed {
		t.Errorf("an endpoint nobody gave: %v, want 403", err)
	}
	if len(p.dials) != 0 {
		t.Fatalf("a refused dial-back was queued")
	}
	// The endpoint the caller's reserveConnections gave is allowed; so is one the settings list.
	sp := newStandbyPool(p, "pub.test", "")
	close(sp.done) // the pool's goroutine is not run
	defer sp.close()
	if err := sp.accept(wire.ReserveResult{Endpoint: "127.0.0.1:7000", ExpiresAt: time.Now().Add(time.Minute)}, wire.SocketMode{}, 1); err != nil {
		t.Fatal(err)
	}
	if err := incoming("127.0.0.1:7000"); err != nil {
		t.Errorf("the endpoint reserveConnections gave: %v", err)
	}
	if err := incoming("10.9.1.2:9999"); err != nil {
		t.Errorf("an endpoint in private.dial_back_endpoints: %v", err)
	}
	// What another public proxy's reservation gave does not count for this one.
	if err := p.mayDialBack("pub2.test", "127.0.0.1:7000"); err == nil {
		t.Errorf("pub2.test may dial where pub.test's reservation said")
	}
	select {
	case <-reached:
		t.Errorf("the victim address was connected to")
	default:
	}
}

// A grant removed from the directory takes effect: the names its operator added stop being
// served and are withdrawn at the public proxy; names still covered, and the settings' own,
// stay.
func TestRemovedGrantsWithdrawTheirNames(t *testing.T) {
	s := Settings{InternalEndpoint: "127.0.0.1:8888", Announce: []Announcement{{Domain: "app.a.example", Proxy: "pub.test"}}}
	p, nd := newProxyAndNode(t, s, t.TempDir())
	ctx := context.Background()
	for _, c := range []struct{ op, domain string }{{"op.test", "api.a.example"}, {"op.test", "web.b.example"}, {"gone.test", "x.a.example"}} {
		if _, err := epsclient.Typed(p.announceConnection)(ctx, call(wire.AnnounceConnection, c.op, []string{".a.example", ".b.example"},
			map[string]string{"domain": c.domain, "proxy": "pub.test"})); err != nil {
			t.Fatal(err)
		}
	}
	// The directory now grants op.test only .a.example, and gone.test nothing (it left).
	nd.mu.Lock()
	nd.grants["op.test"] = []string{".a.example"}
	nd.names = map[string]int{}
	nd.mu.Unlock()
	p.checkGrants(context.Background())
	now := time.Now()
	for name, want := range map[string]bool{"app.a.example": true, "api.a.example": true, "web.b.example": false, "x.a.example": false} {
		if _, ok := p.anns.get(name, "pub.test", now); ok != want {
			t.Errorf("%s served: %v, want %v", name, ok, want)
		}
	}
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.names["web.b.example"] != 1 || nd.names["x.a.example"] != 1 || len(nd.names) != 2 {
		t.Errorf("withdrawals sent to the public proxy: %v", nd.names)
	}
}

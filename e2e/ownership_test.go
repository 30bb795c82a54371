package e2e

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// Another operator granted names under the private proxy's suffix tries, through its own EPS
// node and the real chain, to take over the name the private proxy's settings serve: send its
// clients to a backend of its own, withdraw it, name a target the settings do not allow, or
// announce to a public proxy that does not exist. Each is refused, and the name's clients still
// reach the internal server, never the other operator's backend.
func TestAnotherOperatorCannotTakeOverANameItDoesNotOwn(t *testing.T) {
	t.Parallel()
	c := newChain(t)
	rogue, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	var stolen atomic.Int64
	go func() {
		for {
			conn, err := rogue.Accept()
			if err != nil {
				return
			}
			stolen.Add(1)
			conn.Close()
		}
	}()
	// The private proxy lets operators name the rogue backend as a target, so that what refuses
	// the takeover below is ownership, not the target list.
	overlayRole(t, c, "private-proxy-1", "private:\n  runtime_targets: ["+`"`+rogue.Addr().String()+`"`+"]\n")
	startAll(t, c)
	if err := c.Start(chain.OtherEPS); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const add = "private-proxy-1.ga.announceConnection"
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		what, params, want string
	}{
		{"re-target the configured name", `{"domain": "` + chain.Domain + `", "proxy": "public-proxy-1.ga", "target": "` + rogue.Addr().String() + `"}`, "409"},
		{"withdraw the configured name", `{"domain": "` + chain.Domain + `", "proxy": "public-proxy-1.ga", "expires_at": "` + past + `"}`, "409"},
		{"a target the settings do not list", `{"domain": "api.internal-server.local", "proxy": "public-proxy-1.ga", "target": "127.0.0.1:22"}`, "403"},
		{"a made-up public proxy", `{"domain": "api.internal-server.local", "proxy": "made-up.ga"}`, "403"},
	} {
		var out string
		var err error
		for ctx.Err() == nil {
			// other-eps may still be connecting to the private node: retry what is not an answer.
			out, err = c.Call(ctx, chain.OtherEPS, add, tc.params)
			if !strings.Contains(out, "code 502") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err == nil || !strings.Contains(out, "code "+tc.want) {
			t.Errorf("%s: %v %s, want a %s error", tc.what, err, strings.TrimSpace(out), tc.want)
		}
	}
	for i := range 5 {
		if code, body, err := get(c.HTTPClient(c.Ports.PublicTLS, false), chain.Domain); err != nil || code != 200 || !strings.Contains(body, "success") {
			t.Fatalf("GET %d after the attempts: %d %q %v", i, code, body, err)
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("%d connections reached the other operator's backend", n)
	}
	// What the other operator may read: the names it added (none), not the private proxy's own.
	out, err := c.Call(ctx, chain.OtherEPS, "private-proxy-1.ga.getAnnouncements", "{}")
	if err != nil || strings.Contains(out, chain.Domain) {
		t.Errorf("other-operator.ga's getAnnouncements: %v %s", err, out)
	}
	// The node tells its own operator the directory's current entries (how the proxies see a
	// grant removed), and nobody else.
	out, err = c.Call(ctx, chain.PublicEPS, "public-proxy-1.ga._directory", `{"operators": ["private-proxy-1.ga", "nobody.ga"]}`)
	if err != nil || !strings.Contains(out, "allowed_domains") || !strings.Contains(out, `"nobody.ga": null`) {
		t.Errorf("the node's directory lookup: %v %s", err, out)
	}
	if out, err := c.Call(ctx, chain.OtherEPS, "public-proxy-1.ga._directory", `{"operators": ["private-proxy-1.ga"]}`); err == nil {
		t.Errorf("another operator read the public proxy's directory lookup: %s", out)
	}
	// Nothing refused was stored: the private proxy's file holds the settings' name alone.
	stored := storedDomains(t, c, "private-proxy-1")
	if len(stored) != 1 || stored[0] != chain.Domain {
		t.Errorf("private proxy's stored names: %v", stored)
	}
}

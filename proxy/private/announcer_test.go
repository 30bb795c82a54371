package private

import (
	"fmt"
	"strings"
	"testing"

	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy/wire"
)

// Announcements go out in calls the public proxy accepts: at most wire.MaxAnnounceBatch names and
// well under the JSON-RPC body cap each, every name exactly once.
func TestAnnouncerSplitsLargeSetsIntoAcceptableCalls(t *testing.T) {
	for _, tc := range []struct {
		name  string
		count int
		label int // length of the first label: long names hit the byte limit first
	}{{"many short names", 2*wire.MaxAnnounceBatch + 1, 8}, {"long names", 6000, 60}} {
		t.Run(tc.name, func(t *testing.T) {
			p, nd := newProxyAndNode(t, Settings{InternalEndpoint: "127.0.0.1:8888"}, t.TempDir())
			label := strings.Repeat("a", tc.label-6)
			long := strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 50)
			_ = p.anns.update(func(m map[key]Announcement) error {
				for i := range tc.count {
					d := fmt.Sprintf("%s%06d.%s.example", label, i, long)
					m[key{d, "pub.test"}] = Announcement{Domain: d, Proxy: "pub.test"}
				}
				return nil
			})
			if !p.announceAll() {
				t.Fatal("announceAll failed")
			}
			nd.mu.Lock()
			defer nd.mu.Unlock()
			if len(nd.names) != tc.count {
				t.Errorf("%d distinct names arrived, want %d", len(nd.names), tc.count)
			}
			for name, times := range nd.names {
				if times != 1 {
					t.Fatalf("%s announced %d times", name, times)
				}
			}
			for i, n := range nd.calls["pub.test."+wire.AnnounceConnections] {
				if n > wire.MaxAnnounceBatch || nd.bodies[i] >= jsonrpc.MaxBody {
					t.Errorf("call %d: %d names, %d bytes", i, n, nd.bodies[i])
				}
			}
			if len(nd.calls) != 1 || len(nd.bodies) < 2 {
				t.Errorf("calls: %v", nd.calls)
			}
		})
	}
}

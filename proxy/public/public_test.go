package public

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// If the engine stops while the proxy serves (its accept failed for good), the proxy says so on
// Failed, and the process exits (daemon.Run) rather than run on with a dead public port. A
// proxy that is stopped on purpose reports nothing.
func TestADeadEngineIsAFailure(t *testing.T) {
	p := newProxy(t)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", p.s.TLSBind); err != nil {
		t.Fatalf("the public port does not listen: %v", err)
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.Failed():
		if !strings.Contains(err.Error(), "tls_bind") {
			t.Errorf("failure %q does not name the listeners' settings", err)
		}
	case <-ctx.Done():
		t.Fatal("the engine stopped and the proxy did not report it")
	}
	_ = p.Stop(ctx)

	q := newProxy(t)
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	if err := q.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-q.Failed():
		t.Errorf("a proxy stopped on purpose reported %v", err)
	case <-time.After(200 * time.Millisecond):
	}
}

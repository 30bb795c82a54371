package engine_test

import (
	"sync/atomic"
	"testing"
)

// OnAccept's function hears of every connection either listener accepts, refused ones included,
// and of none once it is removed: the public proxy's GOMAXPROCS governor rests until it does.
func TestOnAcceptHearsEveryAcceptedConnection(t *testing.T) {
	r := newRig(t, nil)
	var heard atomic.Int64
	r.eng.OnAccept(func() { heard.Add(1) })

	// Both listeners defer the accept until the first byte (TCP_DEFER_ACCEPT): each connection
	// sends one, the start of a TLS record or of a token, and stays open.
	for _, addr := range []string{r.cfg.PublicAddr, r.cfg.PublicAddr, r.cfg.InternalAddr} {
		if _, err := dial(t, addr).Write([]byte{0x16}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three accepted connections heard", func() bool { return heard.Load() == 3 })
	waitFor(t, "the engine to count the three", func() bool { return r.eng.HelloConns()+r.eng.TokenConns() == 3 })

	r.eng.OnAccept(nil)
	c := dial(t, r.cfg.PublicAddr)
	if _, err := c.Write([]byte{0x16}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fourth connection in its hello phase", func() bool { return r.eng.HelloConns() == 3 })
	if n := heard.Load(); n != 3 {
		t.Errorf("heard %d connections; want 3, none after OnAccept(nil)", n)
	}
}

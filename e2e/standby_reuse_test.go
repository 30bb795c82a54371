package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// Framed standby sockets (the private proxy's standby_reuse, on by default) carry one client after
// another: a client served through one goes back to the pool on both sides, so no new socket is
// dialed or parked for it. With standby_reuse off, each client uses up its socket as before.
func TestStandbySocketsCarryClientsInTurn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		overlay string
		reused  bool
	}{
		{"reuse", "private: {standby: 4}\n", true},
		{"reuse off", "private: {standby: 4, standby_reuse: false}\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ch := newChain(t)
			withAdmin(t, ch, chain.Public)
			overlayRole(t, ch, "private-proxy-1", c.overlay)
			startAll(t, ch)
			waitParked(t, ch, 4)
			before := adminStats(t, ch, chain.Public)
			cl := ch.HTTPClient(ch.Ports.PublicTLS, false)
			const clients = 20
			for i := range clients {
				code, body, err := get(cl, chain.Domain)
				if err != nil || code != 200 || !strings.Contains(body, "success") {
					t.Fatalf("client %d: %d %q %v", i, code, body, err)
				}
				waitParked(t, ch, 1)
			}
			// The last client's socket comes back once both sides sent their end frame.
			deadline := time.Now().Add(10 * time.Second)
			var after chain.Stats
			for {
				after = adminStats(t, ch, chain.Public)
				reused := after.Counters["StandbyReused"] - before.Counters["StandbyReused"]
				if !c.reused || reused == clients || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			delta := func(k string) int64 { return after.Counters[k] - before.Counters[k] }
			if got := delta("StandbyPaired"); got != clients {
				t.Errorf("clients relayed to standby sockets: %d, want %d", got, clients)
			}
			if c.reused {
				if got := delta("StandbyReused"); got != clients {
					t.Errorf("standby sockets parked again after their client: %d, want %d", got, clients)
				}
				if got := delta("Parked"); got != 0 {
					t.Errorf("new standby sockets parked: %d, want none (the 4 carry every client)", got)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if st, err := ch.Stats(ctx, chain.Public); err != nil || st.Counters["StandbyParked"] != 4 {
					t.Errorf("parked standby sockets after the clients: %v (%v), want 4", st.Counters["StandbyParked"], err)
				}
				return
			}
			if got := delta("StandbyReused"); got != 0 {
				t.Errorf("standby sockets parked again with standby_reuse off: %d, want 0", got)
			}
			if got := delta("Parked"); got < clients {
				t.Errorf("new standby sockets parked with standby_reuse off: %d, want one per client (%d)", got, clients)
			}
		})
	}
}

package engine_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"epsproxy/engine"
)

// observed is an Observer that keeps every event as a line.
type observed struct {
	mu     sync.Mutex
	events []string
}

func (o *observed) add(s string) {
	o.mu.Lock()
	o.events = append(o.events, s)
	o.mu.Unlock()
}

func (o *observed) Routed(domain string)  { o.add("routed " + domain) }
func (o *observed) Relayed(domain string) { o.add("relayed " + domain) }
func (o *observed) Refused(domain string, why engine.Refusal, internal bool) {
	o.add(fmt.Sprintf("refused %q %s internal=%v", domain, why, internal))
}

// waitEvent waits until the observer heard want.
func (o *observed) waitEvent(t testing.TB, want string) {
	t.Helper()
	waitFor(t, want, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return slices.Contains(o.events, want)
	})
}

func (o *observed) count(prefix string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, e := range o.events {
		if len(e) >= len(prefix) && e[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

// The observer hears a relayed client's announcement twice (routed, relayed), a name nobody
// announced as a refusal without a domain, a bad token as an internal refusal, and a routed
// client whose private side never came as a refusal of its announcement.
func TestObserverHearsEachFate(t *testing.T) {
	obs := &observed{}
	r := newRig(t, func(c *engine.Config) {
		c.Observer = obs
		c.AcceptTimeout = 300 * time.Millisecond
	})

	c, err := dialTLS(r.cfg.PublicAddr, r.clientTC, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	obs.waitEvent(t, "relayed "+domain)
	if n := obs.count("routed " + domain); n != 1 {
		t.Errorf("routed %d times, want 1", n)
	}

	nobody := dial(t, r.cfg.PublicAddr)
	if _, err := nobody.Write(helloFor(t, r, "nobody.example.org")); err != nil {
		t.Fatal(err)
	}
	refusedAtOnce(t, nobody, "unannounced name")
	obs.waitEvent(t, `refused "" no_route internal=false`)

	bad := dial(t, r.cfg.InternalAddr)
	if _, err := bad.Write(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	refusedAtOnce(t, bad, "unknown token")
	obs.waitEvent(t, `refused "" unknown_token internal=true`)

	r.holdNotices()
	waiting := dial(t, r.cfg.PublicAddr)
	if _, err := waiting.Write(helloFor(t, r, domain)); err != nil {
		t.Fatal(err)
	}
	obs.waitEvent(t, fmt.Sprintf("refused %q accept_timeout internal=false", domain))
	if n := obs.count("routed " + domain); n != 2 {
		t.Errorf("routed %d times, want 2", n)
	}
	if n := obs.count("relayed "); n != 1 {
		t.Errorf("relayed %d times, want 1", n)
	}
}

// Every reason has a name, and an index past the list reads as "other".
func TestRefusalReasons(t *testing.T) {
	names := engine.RefusalReasons()
	for i, n := range names {
		if got := engine.Refusal(i).String(); got != n || n == "" {
			t.Errorf("Refusal(%d) = %q, list says %q", i, got, n)
		}
	}
	for _, want := range []string{"no_route", "other", "relay_refused", "accept_timeout", "unknown_token"} {
		if !slices.Contains(names, want) {
			t.Errorf("no reason %q in %v", want, names)
		}
	}
	if got := engine.Refusal(len(names)).String(); got != "other" {
		t.Errorf("an unknown Refusal reads %q, want other", got)
	}
}

// StandbyByOperator splits the standby table by operator: tokens reserved and sockets parked.
func TestStandbyByOperator(t *testing.T) {
	r := newRig(t, nil)
	tok := reserveOne(t, r, operator)
	reserveOne(t, r, operator)
	reserveOne(t, r, otherOperator)
	park(t, r, tok)
	got := r.eng.StandbyByOperator()
	want := []engine.OperatorStandby{{Operator: operator, Parked: 1, Tokens: 1}, {Operator: otherOperator, Tokens: 1}}
	if !slices.Equal(got, want) {
		t.Errorf("StandbyByOperator() = %+v, want %+v", got, want)
	}
}

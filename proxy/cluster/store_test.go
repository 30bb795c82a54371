package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"epsproxy/internal/config"
	"epsproxy/internal/testnet"
	"epsproxy/matcher"
	"epsproxy/proxy/wire"
)

var allowAll = []string{"example.com", "example.net"}

// instance is one public proxy instance's store and mirror.
type instance struct {
	st    *Store
	table *matcher.Table
	mu    sync.Mutex
	toks  map[string][][32]byte
	addr  map[string]bool // the last batch's client_address, per operator
}

func startInstance(t *testing.T, r *testnet.Redis, endpoint string, opts matcher.Options) *instance {
	t.Helper()
	in := &instance{table: matcher.New(opts), toks: map[string][][32]byte{}, addr: map[string]bool{}}
	s := Settings{Addr: r.Addr, Heartbeat: config.Duration(100 * time.Millisecond)}
	st, err := New(s, "public.example", endpoint, in.table, opts, Hooks{Tokens: func(op string, hs [][32]byte, _ time.Time, mode wire.SocketMode) {
		in.mu.Lock()
		in.toks[op] = append(in.toks[op], hs...)
		in.addr[op] = mode.ClientAddress
		in.mu.Unlock()
	}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	in.st = st
	st.Start()
	t.Cleanup(func() { _ = st.Close() })
	waitFor(t, "the store to be up", st.Up)
	return in
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func holder(tb *matcher.Table, name string) string {
	a, ok := tb.Lookup([]byte(name), time.Now())
	if !ok {
		return ""
	}
	return a.Operator
}

func announce(t *testing.T, in *instance, op string, items ...matcher.Item) []error {
	t.Helper()
	errs, err := in.st.Announce(context.Background(), op, allowAll, items, time.Now())
	if err != nil {
		t.Fatalf("announce: %v", err)
	}
	return errs
}

func TestAnAnnouncementOnOneInstanceIsServedByTheOther(t *testing.T) {
	r := testnet.StartRedis(t)
	a := startInstance(t, r, "127.0.0.1:1001", matcher.Options{})
	b := startInstance(t, r, "127.0.0.1:1002", matcher.Options{})
	if errs := announce(t, a, "one.example", matcher.Item{Domain: "app.example.com"}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if holder(a.table, "app.example.com") != "one.example" {
		t.Fatal("the instance that accepted the call does not serve the name when the call returns")
	}
	waitFor(t, "the other instance to serve the name", func() bool { return holder(b.table, "app.example.com") == "one.example" })

	// Held by one.example: another operator is refused whichever instance it asks.
	for _, in := range []*instance{a, b} {
		errs := announce(t, in, "two.example", matcher.Item{Domain: "app.example.com"})
		var c matcher.Coder
		if !errors.Is(errs[0], matcher.ErrTaken) || !errors.As(errs[0], &c) || c.Code() != 409 {
			t.Errorf("second operator: got %v, want 409 taken", errs[0])
		}
	}
	// Rules that need no store are checked too.
	errs := announce(t, b, "one.example", matcher.Item{Domain: "x.example.org"}, matcher.Item{Domain: "y.example.com", ExpiresAt: time.Now().Add(8 * 24 * time.Hour)})
	if !errors.Is(errs[0], matcher.ErrNotAllowed) || !errors.Is(errs[1], matcher.ErrExpiry) {
		t.Errorf("local rules: %v", errs)
	}

	// A withdrawal through b is seen by a.
	errs = announce(t, b, "one.example", matcher.Item{Domain: "app.example.com", ExpiresAt: time.Now().Add(-time.Second)})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, "the withdrawal to reach the other instance", func() bool { return holder(a.table, "app.example.com") == "" })
	if errs := announce(t, a, "two.example", matcher.Item{Domain: "app.example.com"}); errs[0] != nil {
		t.Errorf("a withdrawn name is free again: %v", errs[0])
	}
	if err := a.st.Withdraw(context.Background(), "one.example", "app.example.com"); !errors.Is(err, matcher.ErrNotFound) {
		t.Errorf("withdrawing another operator's name: %v", err)
	}
	if err := a.st.Withdraw(context.Background(), "two.example", "app.example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the withdrawal to reach b", func() bool { return holder(b.table, "app.example.com") == "" })
}

func TestTwoOperatorsRacingForANameLeaveOneOwner(t *testing.T) {
	r := testnet.StartRedis(t)
	a := startInstance(t, r, "127.0.0.1:1001", matcher.Options{})
	b := startInstance(t, r, "127.0.0.1:1002", matcher.Options{})
	for round := range 20 {
		name := fmt.Sprintf("race%d.example.com", round)
		var wg sync.WaitGroup
		results := make([]error, 2)
		for i, c := range []struct {
			in *instance
			op string
		}{{a, "one.example"}, {b, "two.example"}} {
			wg.Go(func() {
				errs, err := c.in.st.Announce(context.Background(), c.op, allowAll, []matcher.Item{{Domain: name}}, time.Now())
				if err != nil {
					results[i] = err
					return
				}
				results[i] = errs[0]
			})
		}
		wg.Wait()
		won := 0
		for _, err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, matcher.ErrTaken):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d operators won %s", round, won, name)
		}
		waitFor(t, "both mirrors to agree", func() bool {
			h := holder(a.table, name)
			return h != "" && h == holder(b.table, name)
		})
	}
}

func TestCapsAndExpiryHoldAcrossInstances(t *testing.T) {
	r := testnet.StartRedis(t)
	opts := matcher.Options{MaxPerOperator: 2}
	a := startInstance(t, r, "127.0.0.1:1001", opts)
	b := startInstance(t, r, "127.0.0.1:1002", opts)
	announce(t, a, "one.example", matcher.Item{Domain: "a.example.com"})
	announce(t, b, "one.example", matcher.Item{Domain: "b.example.com"})
	errs := announce(t, a, "one.example", matcher.Item{Domain: "c.example.com"})
	if !errors.Is(errs[0], matcher.ErrFull) {
		t.Fatalf("third name of an operator capped at 2, across instances: %v", errs[0])
	}
	// An expired announcement frees its place and its name for everyone.
	soon := time.Now().Add(300 * time.Millisecond)
	announce(t, b, "one.example", matcher.Item{Domain: "b.example.com", ExpiresAt: soon})
	waitFor(t, "the name to expire", func() bool { return time.Now().After(soon) })
	if holder(a.table, "b.example.com") != "" {
		t.Error("an expired name still matches")
	}
	if errs := announce(t, a, "two.example", matcher.Item{Domain: "b.example.com"}); errs[0] != nil {
		t.Errorf("an expired name of another operator is free: %v", errs[0])
	}
	if errs := announce(t, a, "one.example", matcher.Item{Domain: "c.example.com"}); errs[0] != nil {
		t.Errorf("the operator's expired name no longer counts against its cap: %v", errs[0])
	}
	soon = time.Now().Add(200 * time.Millisecond)
	announce(t, a, "two.example", matcher.Item{Domain: "d.example.com", ExpiresAt: soon})
	waitFor(t, "the name to expire", func() bool { return time.Now().After(soon) })
	n, err := b.st.Purge(context.Background(), time.Now())
	if err != nil || n != 1 {
		t.Errorf("purge: %d %v, want 1", n, err)
	}
	waitFor(t, "the purge to reach a's mirror", func() bool { return a.table.Len() == 3 })
}

func TestAnOutageRefusesAnnouncementsAndLosesNothing(t *testing.T) {
	r := testnet.StartRedis(t)
	a := startInstance(t, r, "127.0.0.1:1001", matcher.Options{})
	b := startInstance(t, r, "127.0.0.1:1002", matcher.Options{})
	announce(t, a, "one.example", matcher.Item{Domain: "kept.example.com"}, matcher.Item{Domain: "later.example.com", ExpiresAt: time.Now().Add(time.Hour)})
	waitFor(t, "b to hold both names", func() bool { return b.table.Len() == 2 })

	r.Kill() // no persistence: it comes back empty
	waitFor(t, "both instances to notice", func() bool { return !a.st.Up() && !b.st.Up() })
	if holder(a.table, "kept.example.com") != "one.example" || holder(b.table, "kept.example.com") != "one.example" {
		t.Fatal("a known name is not served during the outage")
	}
	_, err := b.st.Announce(context.Background(), "one.example", allowAll, []matcher.Item{{Domain: "new.example.com"}}, time.Now())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("announcing during the outage: %v, want ErrUnavailable", err)
	}
	if s := a.st.Stats(); s.Up || s.LastError == "" {
		t.Errorf("stats during the outage: %+v", s)
	}

	r.Restart()
	waitFor(t, "both instances to be back", func() bool { return a.st.Up() && b.st.Up() })
	if errs := announce(t, b, "one.example", matcher.Item{Domain: "new.example.com"}); errs[0] != nil {
		t.Fatalf("announcing after the outage: %v", errs[0])
	}
	// A third instance, reading only Redis, finds everything accepted before the outage.
	c := startInstance(t, r, "127.0.0.1:1003", matcher.Options{})
	got := []string{}
	for _, an := range c.table.List(time.Now()) {
		got = append(got, an.Domain)
	}
	if want := []string{"kept.example.com", "later.example.com", "new.example.com"}; !slices.Equal(got, want) {
		t.Errorf("after the outage the store holds %v, want %v", got, want)
	}
	if a.st.Stats().Reseeded+b.st.Stats().Reseeded < 2 {
		t.Errorf("no instance put the names back: %+v %+v", a.st.Stats(), b.st.Stats())
	}
	// The names another operator took while the store was empty stay theirs.
}

func TestTokensReachTheInstanceTheyAreFor(t *testing.T) {
	r := testnet.StartRedis(t)
	a := startInstance(t, r, "127.0.0.1:1001", matcher.Options{})
	b := startInstance(t, r, "127.0.0.1:1002", matcher.Options{})
	waitFor(t, "both instances listed", func() bool { return len(a.st.Instances()) == 2 })
	if got := a.st.Instances(); !slices.Equal(got, []string{"127.0.0.1:1001", "127.0.0.1:1002"}) {
		t.Errorf("instances: %v", got)
	}
	hs := [][32]byte{{1}, {2}}
	if err := a.st.SendTokens(context.Background(), "127.0.0.1:1002", "one.example", hs, time.Now().Add(time.Minute), wire.SocketMode{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to file the hashes", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return slices.Equal(b.toks["one.example"], hs)
	})
	// client_address travels with its batch.
	if err := a.st.SendTokens(context.Background(), "127.0.0.1:1002", "two.example", hs[:1], time.Now().Add(time.Minute), wire.SocketMode{ClientAddress: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to file the second batch with client_address", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.toks["two.example"]) == 1 && b.addr["two.example"] && !b.addr["one.example"]
	})
	a.mu.Lock()
	if len(a.toks) != 0 {
		t.Error("a filed tokens meant for b")
	}
	a.mu.Unlock()
	if err := a.st.SendTokens(context.Background(), "127.0.0.1:1009", "one.example", hs, time.Now(), wire.SocketMode{}); !errors.Is(err, ErrNoInstance) {
		t.Errorf("tokens for no instance: %v", err)
	}
	_ = b.st.Close()
	waitFor(t, "b to leave the live list", func() bool { return len(a.st.Instances()) == 1 })
}

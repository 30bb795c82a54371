package engine_test

import (
	"errors"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/proxy/wire"
)

// Tokens another instance minted: instance X of a public proxy mints standby tokens (Mint) on
// behalf of instance Y and sends Y only their hashes (AcceptTokens). In these tests one engine
// plays both instances; what matters is that Mint files nothing and AcceptTokens files exactly
// what Reserve would.

// mint makes n tokens with Mint and returns them with their hashes.
func mint(t testing.TB, r *rig, n int) ([]wire.Token, []wire.TokenHash, time.Time) {
	t.Helper()
	toks, until, err := r.eng.Mint(n)
	if err != nil {
		t.Fatalf("Mint(%d): %v", n, err)
	}
	hashes := make([]wire.TokenHash, len(toks))
	for i, tok := range toks {
		hashes[i] = engine.HashToken(tok)
	}
	return toks, hashes, until
}

// wantTokens checks the outstanding standby tokens.
func wantTokens(t testing.TB, r *rig, want int, what string) {
	t.Helper()
	if _, tok := r.eng.Standby(); tok != want {
		t.Errorf("%s: outstanding tokens = %d, want %d", what, tok, want)
	}
}

func TestStandbyMintFilesNothing(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	toks, _, _ := mint(t, r, 2)
	if len(toks) != 2 || toks[0] == toks[1] {
		t.Fatalf("Mint(2) returned %d tokens, equal: %v", len(toks), len(toks) == 2 && toks[0] == toks[1])
	}
	wantTokens(t, r, 0, "after Mint")
	refusedAtOnce(t, presentToken(t, r, toks[0][:]), "a minted token nobody accepted")
	wantStats(t, r.eng, map[string]int64{"BadTokens": 1})
	wantStandbyStats(t, r, 0, 0, 0)
}

func TestStandbyAcceptedTokenServesTheNextClient(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	toks, hashes, until := mint(t, r, 2)
	// A hash twice in one batch is filed once.
	if err := r.eng.AcceptTokens(operator, append(hashes, hashes[0]), until, wire.SocketMode{}); err != nil {
		t.Fatalf("AcceptTokens: %v", err)
	}
	wantTokens(t, r, 2, "after AcceptTokens")
	// The same batch delivered again files nothing new.
	if err := r.eng.AcceptTokens(operator, hashes, until, wire.SocketMode{}); err != nil {
		t.Fatalf("AcceptTokens again: %v", err)
	}
	wantTokens(t, r, 2, "after the same batch again")

	pub := park(t, r, toks[1])
	wantTokens(t, r, 1, "after one token was presented")
	if err := r.relayToBackend(pub); err != nil {
		t.Fatal(err)
	}
	servedByStandby(t, r, "through an accepted token's socket")
	noNotice(t, r)
	wantParked(t, r, 0)
	wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
	wantStandbyStats(t, r, 1, 1, 0)
}

func TestStandbyAcceptedTokenWorksOnce(t *testing.T) {
	t.Parallel()
	r := standbyRig(t, nil)
	toks, hashes, until := mint(t, r, 1)
	if err := r.eng.AcceptTokens(operator, hashes, until, wire.SocketMode{}); err != nil {
		t.Fatal(err)
	}
	first := park(t, r, toks[0])
	refusedAtOnce(t, presentToken(t, r, toks[0][:]), "second use of an accepted token")
	stillOpen(t, first, "the socket parked with the token's first use")
	if p, tok := r.eng.Standby(); p != 1 || tok != 0 {
		t.Errorf("Standby() = %d parked, %d tokens, want 1 and 0", p, tok)
	}
	wantStats(t, r.eng, map[string]int64{"BadTokens": 1})
	wantStandbyStats(t, r, 1, 0, 0)
}

func TestStandbyAcceptCaps(t *testing.T) {
	t.Parallel()
	t.Run("MaxStandby", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, func(c *engine.Config) { c.MaxStandby = 3 })
		first, _, until := mint(t, r, 3)
		more, _, _ := mint(t, r, 2)
		batch := append(append([]wire.Token(nil), first...), more...)
		hashes := make([]wire.TokenHash, len(batch))
		for i, tok := range batch {
			hashes[i] = engine.HashToken(tok)
		}
		if err := r.eng.AcceptTokens(operator, hashes, until, wire.SocketMode{}); err != nil {
			t.Fatal(err)
		}
		wantTokens(t, r, 3, "5 hashes accepted under MaxStandby 3")
		refusedAtOnce(t, presentToken(t, r, more[0][:]), "a token beyond the cap")
		pub := park(t, r, first[0])

		// One socket parked: two more tokens fit, and they push out the two outstanding ones.
		second, secondHashes, until := mint(t, r, 3)
		if err := r.eng.AcceptTokens(operator, secondHashes, until, wire.SocketMode{}); err != nil {
			t.Fatal(err)
		}
		if p, tok := r.eng.Standby(); p != 1 || tok != 2 {
			t.Errorf("Standby() = %d parked, %d tokens, want 1 and 2", p, tok)
		}
		refusedAtOnce(t, presentToken(t, r, first[1][:]), "an evicted token")
		refusedAtOnce(t, presentToken(t, r, second[2][:]), "a token beyond the room parked sockets leave")
		park(t, r, second[0])
		park(t, r, second[1])
		stillOpen(t, pub, "the first parked socket")

		// At the cap with parked sockets alone: nothing fits.
		_, full, until := mint(t, r, 1)
		if err := r.eng.AcceptTokens(operator, full, until, wire.SocketMode{}); err == nil {
			t.Error("AcceptTokens with the operator's cap taken by parked sockets: no error")
		}
		if p, tok := r.eng.Standby(); p != 3 || tok != 0 {
			t.Errorf("Standby() = %d parked, %d tokens, want 3 and 0", p, tok)
		}
		wantStats(t, r.eng, map[string]int64{"BadTokens": 3})
		wantStandbyStats(t, r, 3, 0, 0)
	})
	t.Run("MaxStandbyOperators", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, func(c *engine.Config) { c.MaxStandbyOperators = 1 })
		reserveOne(t, r, operator)
		_, hashes, until := mint(t, r, 1)
		if err := r.eng.AcceptTokens(otherOperator, hashes, until, wire.SocketMode{}); err == nil {
			t.Error("AcceptTokens for a second operator with MaxStandbyOperators 1: no error")
		}
		if err := r.eng.AcceptTokens(operator, hashes, until, wire.SocketMode{}); err != nil {
			t.Errorf("AcceptTokens for the operator already holding tokens: %v", err)
		}
		wantTokens(t, r, 2, "one operator's tokens")
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, func(c *engine.Config) { c.MaxStandby = -1 })
		var tok wire.Token
		err := r.eng.AcceptTokens(operator, []wire.TokenHash{engine.HashToken(tok)}, time.Now().Add(time.Minute), wire.SocketMode{})
		if !errors.Is(err, engine.ErrStandbyOff) {
			t.Errorf("AcceptTokens with MaxStandby -1: err %v, want ErrStandbyOff", err)
		}
		if toks, _, err := r.eng.Mint(1); !errors.Is(err, engine.ErrStandbyOff) || len(toks) != 0 {
			t.Errorf("Mint with MaxStandby -1: %d tokens, err %v, want none and ErrStandbyOff", len(toks), err)
		}
		wantTokens(t, r, 0, "standby off")
	})
}

func TestStandbyAcceptExpiry(t *testing.T) {
	t.Parallel()
	t.Run("already expired", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, nil)
		toks, hashes, _ := mint(t, r, 1)
		if err := r.eng.AcceptTokens(operator, hashes, time.Now().Add(-time.Second), wire.SocketMode{}); err == nil {
			t.Error("AcceptTokens with an until in the past: no error")
		}
		wantTokens(t, r, 0, "expired batch")
		refusedAtOnce(t, presentToken(t, r, toks[0][:]), "a token accepted already expired")
	})
	t.Run("brought down to StandbyTokenTTL", func(t *testing.T) {
		t.Parallel()
		const ttl = 200 * time.Millisecond
		// No sweep in the test's time: the claim must see the expiry.
		r := standbyRig(t, func(c *engine.Config) {
			c.StandbyTokenTTL = ttl
			c.Tick = longPhase
		})
		toks, hashes, _ := mint(t, r, 1)
		accepted := time.Now()
		if err := r.eng.AcceptTokens(operator, hashes, accepted.Add(time.Hour), wire.SocketMode{}); err != nil {
			t.Fatal(err)
		}
		sleepUntil(accepted.Add(ttl + 10*time.Millisecond))
		refusedAtOnce(t, presentToken(t, r, toks[0][:]), "an accepted token past this instance's StandbyTokenTTL")
		wantStats(t, r.eng, map[string]int64{"BadTokens": 1})
		wantStandbyStats(t, r, 0, 0, 0)
	})
	// Tokens are forgotten in the order they expire, whatever order they were filed in: an accepted
	// token that expires first is swept although a reserved one was filed before it.
	t.Run("swept before a token filed earlier", func(t *testing.T) {
		t.Parallel()
		r := standbyRig(t, nil) // the rig's short tick; the default StandbyTokenTTL of minutes
		reserveOne(t, r, operator)
		_, hashes, _ := mint(t, r, 1)
		if err := r.eng.AcceptTokens(operator, hashes, time.Now().Add(100*time.Millisecond), wire.SocketMode{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the accepted token to be swept", func() bool {
			_, tok := r.eng.Standby()
			return tok == 1
		})
	})
}

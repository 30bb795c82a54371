package public

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"epsproxy/engine"
	"epsproxy/internal/jsonrpc"
	"epsproxy/proxy/wire"
)

// incomingConnection carries the client's addresses; a private proxy that refuses them as
// unknown params (an earlier version) gets the call again at once without them, and its
// operator's next calls go without them; other operators still get them.
func TestIncomingConnectionCarriesAddressesOrGoesWithout(t *testing.T) {
	calls := make(chan wire.IncomingParams, 16)
	p := newProxyWithNode(t, func(method string, params json.RawMessage, _ []byte) (any, *jsonrpc.Error) {
		var ps wire.IncomingParams
		_ = json.Unmarshal(params, &ps)
		calls <- ps
		if method == "old.test."+wire.IncomingConnection && ps.Source.IsValid() {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, `params of incomingConnection: json: unknown field "source"`)
		}
		return wire.OK, nil
	})
	addrs := wire.Addresses{Source: netip.MustParseAddrPort("127.0.0.2:40000"), Destination: netip.MustParseAddrPort("127.0.0.1:4433")}
	next := func(what string) wire.IncomingParams {
		t.Helper()
		select {
		case ps := <-calls:
			return ps
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no incomingConnection", what)
			return wire.IncomingParams{}
		}
	}
	notify := func(op string) {
		t.Helper()
		if err := p.notify(engine.Notice{Domain: "www.a.example", Operator: op, Token: wire.Token{1}, Addresses: addrs}); err != nil {
			t.Fatal(err)
		}
	}

	notify("new.test")
	if ps := next("a private proxy that takes them"); ps.Addresses() != addrs || ps.Domain != "www.a.example" || ps.Endpoint != p.s.InternalEndpoint {
		t.Errorf("incomingConnection params %+v, want the client's addresses %v", ps, addrs)
	}
	notify("old.test")
	if ps := next("the first call to an earlier version"); ps.Addresses() != addrs {
		t.Errorf("first call without the addresses: %+v", ps)
	}
	if ps := next("the call repeated"); ps.Addresses() != (wire.Addresses{}) || ps.Token != (wire.Token{1}) {
		t.Errorf("the repeated call %+v, want the same call without addresses", ps)
	}
	notify("old.test")
	if ps := next("the next call to an earlier version"); ps.Addresses() != (wire.Addresses{}) {
		t.Errorf("the next call to an operator that refused them carries %v", ps.Addresses())
	}
	notify("new.test")
	if ps := next("the other operator again"); ps.Addresses() != addrs {
		t.Errorf("another operator went without addresses: %+v", ps)
	}
	select {
	case ps := <-calls:
		t.Errorf("an extra call %+v", ps)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestBareOperatorsExpireAndAreCapped(t *testing.T) {
	var b bareOperators
	now := time.Now()
	if b.has("a", now) {
		t.Fatal("the zero value holds an operator")
	}
	if !b.add("a", now) || b.add("a", now.Add(time.Second)) {
		t.Fatal("add: want true the first time, false while it holds")
	}
	if !b.has("a", now.Add(bareFor-time.Second)) || b.has("a", now.Add(bareFor)) {
		t.Error("an operator goes without addresses for bareFor, no longer")
	}
	if !b.add("a", now.Add(bareFor)) {
		t.Error("add after expiry: want true")
	}
	for i := range maxBare + 10 {
		b.add("op"+strconv.Itoa(i), now)
	}
	if n := len(b.until); n > maxBare {
		t.Errorf("%d operators remembered, cap %d", n, maxBare)
	}
	// Once they expire, room is made for newcomers.
	later := now.Add(bareFor + time.Second)
	if !b.add("late", later) || !b.has("late", later) {
		t.Error("a newcomer after the others expired was not remembered")
	}
}

package public

import (
	"context"
	"testing"

	"epsproxy/epsclient"
	"epsproxy/proxy/wire"
)

// reserveConnections confirms client_address when asked, and only then, so a private proxy
// knows whether the sockets of its tokens will carry the address header.
func TestReserveConfirmsClientAddress(t *testing.T) {
	p := newProxy(t)
	for _, ask := range []bool{true, false} {
		params := `{"count": 2}`
		if ask {
			params = `{"count": 2, "client_address": true}`
		}
		res, err := epsclient.Typed(p.reserveConnections)(context.Background(), call(wire.ReserveConnections, "a.test", []string{".a.example"}, params))
		if err != nil {
			t.Fatal(err)
		}
		out := res.(wire.ReserveResult)
		if len(out.Tokens) != 2 || out.ClientAddress != ask {
			t.Errorf("asked client_address %v: %d tokens, confirmed %v", ask, len(out.Tokens), out.ClientAddress)
		}
	}
}

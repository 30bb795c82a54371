package jsonrpc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
)

const server = "server.test"

// serve runs h over mutual TLS with id on a loopback port until the test ends.
func serve(t *testing.T, id *config.Identity, h http.HandlerFunc) (addr string, srv *http.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = jsonrpc.NewHTTPServer(h, id.ServerConfig(), 0, slog.New(slog.DiscardHandler))
	go func() { _ = srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), srv
}

func client(t *testing.T, id *config.Identity, addr string) *jsonrpc.Client {
	t.Helper()
	c := &jsonrpc.Client{URL: "https://" + addr + "/", HTTP: &http.Client{Transport: jsonrpc.NewTransport(id.ClientConfig(server), nil)}}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

func call(c *jsonrpc.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Call(ctx, "m", map[string]any{}, nil)
}

// Unsent is what lets a caller send a call elsewhere without running it twice: it holds when no
// connection could be had (refused, handshake refused, a server that went away after a call) and
// never once the request could have reached a handler.
func TestUnsentOnlyWhenTheRequestCannotHaveArrived(t *testing.T) {
	p := testnet.NewPKI(t, server)
	id := p.Identity(t, server)
	var reached atomic.Int64
	addr, srv := serve(t, id, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		req := jsonrpc.Accept(w, r, jsonrpc.MaxBody)
		if req == nil {
			return
		}
		switch r.URL.Path {
		case "/abort":
			panic(http.ErrAbortHandler) // the request arrived, the answer never leaves
		case "/slow":
			<-r.Context().Done()
		case "/refuse":
			jsonrpc.WriteError(w, req.ID, jsonrpc.Errorf(jsonrpc.CodeNotAllowed, "no"))
		default:
			jsonrpc.WriteResult(w, req.ID, "ok")
		}
	})
	at := func(path string) *jsonrpc.Client {
		c := client(t, id, addr)
		c.URL = "https://" + addr + path
		return c
	}
	check := func(what string, err error, wantUnsent bool, wantCode int) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		var e *jsonrpc.Error
		if !errors.As(err, &e) || e.Code != wantCode {
			t.Errorf("%s: %v, want code %d", what, err, wantCode)
		}
		if got := jsonrpc.Unsent(err); got != wantUnsent {
			t.Errorf("%s: Unsent = %v, want %v (%v)", what, got, wantUnsent, err)
		}
	}

	if err := call(at("/"), 10*time.Second); err != nil {
		t.Fatalf("plain call: %v", err)
	}
	check("a JSON-RPC error", call(at("/refuse"), 10*time.Second), false, jsonrpc.CodeNotAllowed)
	before := reached.Load()
	check("aborted by the handler", call(at("/abort"), 10*time.Second), false, jsonrpc.CodeUnreachable)
	if reached.Load() == before {
		t.Error("the aborted call never reached the handler")
	}
	check("the call's deadline", call(at("/slow"), 300*time.Millisecond), false, jsonrpc.CodeTimeout)

	check("nobody listening", call(client(t, id, testnet.FreeAddr(t)), 10*time.Second), true, jsonrpc.CodeUnreachable)

	stranger := testnet.NewPKI(t, server)
	strangeAddr, _ := serve(t, stranger.Identity(t, server), func(w http.ResponseWriter, r *http.Request) {
		t.Error("a handshake with a server of another CA reached its handler")
	})
	check("a server of another CA", call(client(t, id, strangeAddr), 10*time.Second), true, jsonrpc.CodeUnreachable)

	// A server that shuts down after a call: the pooled connection is told GOAWAY, and the
	// next call finds nobody to dial.
	c := at("/")
	if err := call(c, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	check("a server gone after a call", call(c, 10*time.Second), true, jsonrpc.CodeUnreachable)

	// A cancelled call is not unsent: its caller has gone.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	err := client(t, id, testnet.FreeAddr(t)).Call(ctx, "m", nil, nil)
	if err == nil || jsonrpc.Unsent(err) {
		t.Errorf("cancelled call: %v, Unsent %v", err, jsonrpc.Unsent(err))
	}
	if jsonrpc.Unsent(io.EOF) || jsonrpc.Unsent(nil) {
		t.Error("Unsent holds for an error that is not from a call")
	}
}

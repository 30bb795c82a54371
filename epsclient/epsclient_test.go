package epsclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"epsproxy/eps/directory"
	"epsproxy/epsclient"
	"epsproxy/internal/config"
	"epsproxy/internal/jsonrpc"
	"epsproxy/internal/testnet"
)

const op = "op.test"

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer runs an epsclient.Server for op with the given handlers.
func startServer(t *testing.T, p *testnet.PKI, handlers map[string]epsclient.Handler) *epsclient.Server {
	t.Helper()
	srv := epsclient.NewServer(op, discard())
	for m, h := range handlers {
		srv.Handle(m, h)
	}
	if err := srv.Start("127.0.0.1:0", "/jsonrpc", p.Identity(t, op)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// rawCall posts body to the server as the holder of certFile (the node holds op's certificate).
func rawCall(t *testing.T, p *testnet.PKI, srv *epsclient.Server, certFile string, method string, params any) error {
	t.Helper()
	id := p.Identity(t, certFile)
	c := &jsonrpc.Client{URL: "https://" + srv.Addr() + "/jsonrpc", HTTP: &http.Client{Transport: jsonrpc.NewTransport(id.ClientConfig(op), nil)}}
	defer c.HTTP.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Call(ctx, method, params, nil)
}

func code(err error) int {
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestServerChecksClientAndParams(t *testing.T) {
	p := testnet.NewPKI(t, op, "other.test")
	type params struct {
		Domain string `json:"domain"`
	}
	got := make(chan string, 1)
	srv := startServer(t, p, map[string]epsclient.Handler{
		"m": func(ctx context.Context, c *epsclient.Call) (any, error) {
			var ps params
			if err := c.Decode(&ps); err != nil {
				return nil, err
			}
			got <- c.Caller.Name + " " + ps.Domain
			return "ok", nil
		},
	})
	client := map[string]any{"name": "caller.test", "entry": map[string]any{"name": "caller.test", "groups": []string{"g"}}}
	if err := rawCall(t, p, srv, op, "m", map[string]any{"domain": "a.example", "_client": client}); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "caller.test a.example" {
		t.Errorf("handler saw %q", g)
	}
	cases := []struct {
		name     string
		cert     string
		method   string
		params   any
		wantCode int
		wantText string
	}{
		{"unknown field", op, "m", map[string]any{"domian": "x", "_client": client}, jsonrpc.CodeInvalidParams, "domian"},
		{"wrong type", op, "m", map[string]any{"domain": 5, "_client": client}, jsonrpc.CodeInvalidParams, "domain"},
		{"no _client", op, "m", map[string]any{"domain": "x"}, jsonrpc.CodeNotAllowed, "_client"},
		{"malformed _client", op, "m", map[string]any{"_client": "me"}, jsonrpc.CodeInvalidParams, "_client"},
		{"unknown method", op, "nope", map[string]any{"_client": client}, jsonrpc.CodeMethodNotFound, "nope"},
		{"not this operator's node", "other.test", "m", map[string]any{"_client": client}, jsonrpc.CodeNotAllowed, "only the EPS node"},
	}
	for _, c := range cases {
		err := rawCall(t, p, srv, c.cert, c.method, c.params)
		if code(err) != c.wantCode || !strings.Contains(err.Error(), c.wantText) {
			t.Errorf("%s: got %v, want code %d mentioning %q", c.name, err, c.wantCode, c.wantText)
		}
	}
	select {
	case g := <-got:
		t.Errorf("a refused call reached the handler: %q", g)
	default:
	}
}

// A node stand-in: the pool's client talks to any JSON-RPC endpoint that accepts its
// certificate, so an epsclient.Server with a blocking method serves as the "node" here.
func TestPoolQueueIsBoundedAndLosesNothing(t *testing.T) {
	p := testnet.NewPKI(t, op)
	release := make(chan struct{})
	srv := startServer(t, p, map[string]epsclient.Handler{
		// The pool's client sends "op.test.block"; this endpoint registers that full name.
		op + ".block": func(ctx context.Context, c *epsclient.Call) (any, error) {
			select {
			case <-release:
				return "done", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	})
	// One worker; a queue of 8, of which one operator may fill a quarter.
	s := epsclient.Settings{Node: "https://" + srv.Addr() + "/jsonrpc", Listen: "127.0.0.1:0", Workers: 1, Queue: 8}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	c := epsclient.NewClient(s, p.Identity(t, op), op)
	defer c.Close()
	pool := epsclient.NewPool(c, s.Workers, s.Queue)
	var (
		mu      sync.Mutex
		results []string
		wg      sync.WaitGroup
	)
	submit := func() error {
		wg.Add(1)
		err := pool.Submit(epsclient.Job{Operator: op, Method: "block", Params: map[string]any{"_client": map[string]any{"name": "x"}},
			Done: func(raw json.RawMessage, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					results = append(results, "error: "+err.Error())
					return
				}
				results = append(results, string(raw))
			}})
		if err != nil {
			wg.Done()
		}
		return err
	}
	if err := submit(); err != nil {
		t.Fatal(err)
	}
	// Wait until the worker holds the first job, so the queue is empty again.
	deadline := time.Now().Add(5 * time.Second)
	for pool.Queued() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 2; i++ {
		if err := submit(); err != nil {
			t.Fatalf("job %d refused with room in the queue: %v", i+2, err)
		}
	}
	start := time.Now()
	if err := submit(); !errors.Is(err, epsclient.ErrQueueFull) {
		t.Fatalf("fourth job with one worker busy and the operator's two queued: %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a full queue blocked Submit for %v", d)
	}
	close(release)
	wg.Wait()
	if len(results) != 3 {
		t.Fatalf("results: %v, want 3", results)
	}
	for _, r := range results {
		if r != `"done"` {
			t.Errorf("result %q, want \"done\"", r)
		}
	}
	pool.Close()
	if err := submit(); !errors.Is(err, epsclient.ErrPoolClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
}

func TestSettingsValidate(t *testing.T) {
	bad := []epsclient.Settings{
		{Node: "http://127.0.0.1:1/jsonrpc", Listen: "127.0.0.1:0"},
		{Node: "https://127.0.0.1:1/jsonrpc"},
		{Node: "https://127.0.0.1:1/jsonrpc", Listen: "nohost"},
		{Node: "https://127.0.0.1:1/jsonrpc", Listen: "127.0.0.1:0", Workers: 1000},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: accepted", s)
		}
	}
}

// An operator whose calls never answer holds its share of the workers and of the queue, no
// more: another operator's calls, submitted after a flood of the stuck one's, are served while
// the stuck calls are still waiting, and the stuck operator's excess is refused at once.
func TestPoolOneStuckOperatorDelaysNoOther(t *testing.T) {
	p := testnet.NewPKI(t, op)
	release := make(chan struct{})
	defer close(release)
	srv := startServer(t, p, map[string]epsclient.Handler{
		"stuck.test.call": func(ctx context.Context, c *epsclient.Call) (any, error) {
			select {
			case <-release:
				return "late", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		"fine.test.call": func(ctx context.Context, c *epsclient.Call) (any, error) { return "fine", nil },
	})
	// Stuck calls do not time out during the test: only the shares can let the others through.
	s := epsclient.Settings{Node: "https://" + srv.Addr() + "/jsonrpc", Listen: "127.0.0.1:0", Workers: 8, Queue: 64,
		Timeout: config.Duration(time.Minute)}.WithDefaults()
	c := epsclient.NewClient(s, p.Identity(t, op), op)
	defer c.Close()
	pool := epsclient.NewPool(c, s.Workers, s.Queue)
	defer pool.Close()
	params := map[string]any{"_client": map[string]any{"name": "x"}}
	refused := 0
	for range 64 {
		if err := pool.Submit(epsclient.Job{Operator: "stuck.test", Method: "call", Params: params}); errors.Is(err, epsclient.ErrQueueFull) {
			refused++
		}
	}
	// Its share: a quarter of the queue (16) waiting, plus what its quarter of the workers (2)
	// took off the queue meanwhile.
	if accepted := 64 - refused; accepted < 64/4 || accepted > 64/4+8/4 {
		t.Errorf("the stuck operator had %d of 64 jobs taken, want 16 queued plus at most 2 running", accepted)
	}
	done := make(chan string, 10)
	for range 10 {
		if err := pool.Submit(epsclient.Job{Operator: "fine.test", Method: "call", Params: params,
			Done: func(raw json.RawMessage, err error) {
				if err != nil {
					done <- err.Error()
					return
				}
				done <- string(raw)
			}}); err != nil {
			t.Fatalf("the other operator's job refused: %v", err)
		}
	}
	for range 10 {
		select {
		case r := <-done:
			if r != `"fine"` {
				t.Errorf("the other operator's call: %s", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the other operator's calls wait behind the stuck operator's")
		}
	}
}

// With eps.pins, the proxy's link to its node holds only for a pinned certificate, both ways:
// the server takes delivered calls only from it, and the client reaches only it. Another
// certificate for the same name, from the same CA, is refused.
func TestNodePins(t *testing.T) {
	p := testnet.NewPKI(t, op)
	p.Add(t, "other-"+op, op) // the same name, another key: what a thief of the CA's trust would hold
	good, other := p.Identity(t, op), p.Identity(t, "other-"+op)
	pin := directory.Fingerprint(good.Cert.Leaf)
	srv := startServer(t, p, map[string]epsclient.Handler{"m": func(ctx context.Context, c *epsclient.Call) (any, error) { return "ok", nil }})
	// startServer runs unpinned; a pinned server takes the pinned caller only.
	pinnedSrv := epsclient.NewServer(op, discard())
	pinnedSrv.Pin([]string{pin})
	pinnedSrv.Handle("m", func(ctx context.Context, c *epsclient.Call) (any, error) { return "ok", nil })
	if err := pinnedSrv.Start("127.0.0.1:0", "/jsonrpc", good); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pinnedSrv.Shutdown(context.Background()) })
	params := map[string]any{"_client": map[string]any{"name": "x"}}
	if err := rawCall(t, p, pinnedSrv, op, "m", params); err != nil {
		t.Errorf("the pinned node's call: %v", err)
	}
	if err := rawCall(t, p, pinnedSrv, "other-"+op, "m", params); code(err) != jsonrpc.CodeNotAllowed || !strings.Contains(err.Error(), "pins") {
		t.Errorf("another certificate for the name: %v, want 403 naming the pins", err)
	}
	// The client side: a node presenting a certificate other than the pinned one is not reached.
	s := epsclient.Settings{Node: "https://" + srv.Addr() + "/jsonrpc", Listen: "127.0.0.1:0", Pins: []string{directory.Fingerprint(other.Cert.Leaf)}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	c := epsclient.NewClient(s, good, op)
	defer c.Close()
	if err := c.Call(context.Background(), op, "m", params, nil); err == nil || !strings.Contains(err.Error(), "eps.pins") {
		t.Errorf("a node whose certificate is not pinned was reached: %v", err)
	}
	if err := (epsclient.Settings{Node: "https://127.0.0.1:1/x", Listen: "127.0.0.1:0", Pins: []string{"ABC"}}).Validate(); err == nil {
		t.Errorf("a malformed pin was accepted")
	}
}

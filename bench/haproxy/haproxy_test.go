package haproxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"epsproxy/bench/load"
)

func TestRenderSNIPassthrough(t *testing.T) {
	out, err := Config{
		Bind: "127.0.0.1:8443",
		Routes: []Route{
			{SNI: "test.internal-server.local", Addr: "127.0.0.1:8888"},
			{SNI: "raw.internal-server.local", Addr: "127.0.0.1:9001"},
		},
		InspectDelay: 2 * time.Second,
	}.Render()
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(out)
	for _, want := range []string{
		"mode tcp",
		"bind 127.0.0.1:8443",
		"tcp-request inspect-delay 2000ms",
		"tcp-request content accept if { req.ssl_hello_type 1 }",
		"use_backend route0 if { req.ssl_sni -i test.internal-server.local }",
		"use_backend route1 if { req.ssl_sni -i raw.internal-server.local }",
		"backend route0\n    server s0 127.0.0.1:8888",
		"backend route1\n    server s1 127.0.0.1:9001",
		"maxconn 9500",
		"timeout client 3600000ms",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	// The accept rule must come before routing: HAProxy evaluates req.ssl_sni only once the
	// whole hello has been waited for.
	if strings.Index(cfg, "content accept") > strings.Index(cfg, "use_backend") {
		t.Error("use_backend before the accept rule")
	}
}

func TestRenderRejectsBadInput(t *testing.T) {
	ok := Route{SNI: "a.example", Addr: "127.0.0.1:1"}
	for name, c := range map[string]Config{
		"no routes":        {Bind: "127.0.0.1:1"},
		"bind host name":   {Bind: "localhost:1", Routes: []Route{ok}},
		"bind no port":     {Bind: "127.0.0.1", Routes: []Route{ok}},
		"bind port 0":      {Bind: "127.0.0.1:0", Routes: []Route{ok}},
		"sni with space":   {Bind: "127.0.0.1:1", Routes: []Route{{SNI: "a b", Addr: "127.0.0.1:1"}}},
		"sni injection":    {Bind: "127.0.0.1:1", Routes: []Route{{SNI: "a }\nbackend x", Addr: "127.0.0.1:1"}}},
		"sni wildcard":     {Bind: "127.0.0.1:1", Routes: []Route{{SNI: "*.example", Addr: "127.0.0.1:1"}}},
		"sni empty label":  {Bind: "127.0.0.1:1", Routes: []Route{{SNI: "a..example", Addr: "127.0.0.1:1"}}},
		"duplicate sni":    {Bind: "127.0.0.1:1", Routes: []Route{ok, ok}},
		"addr not ip":      {Bind: "127.0.0.1:1", Routes: []Route{{SNI: "a.example", Addr: "backend:1"}}},
		"negative maxconn": {Bind: "127.0.0.1:1", Routes: []Route{ok}, MaxConn: -1},
		"tiny timeout":     {Bind: "127.0.0.1:1", Routes: []Route{ok}, InspectDelay: time.Nanosecond},
		"too many routes":  {Bind: "127.0.0.1:1", Routes: make([]Route, MaxRoutes+1)},
	} {
		if out, err := c.Render(); err == nil {
			t.Errorf("%s: rendered\n%s", name, out)
		}
	}
}

// TestRoutesByRealClientHello runs the real HAProxy (when installed) and checks that a
// crypto/tls ClientHello for one name reaches that name's backend byte for byte, and that
// another name reaches the other backend.
func TestRoutesByRealClientHello(t *testing.T) {
	bin := Find()
	if bin == "" {
		t.Skip("haproxy is not installed (apt-get install -y haproxy); rendering is covered above")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lns [2]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		lns[i] = ln
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bind := free.Addr().String()
	free.Close()
	p, err := Start(ctx, bin, t.TempDir(), "test", Config{Bind: bind, Routes: []Route{
		{SNI: "one.internal-server.local", Addr: lns[0].Addr().String()},
		{SNI: "two.internal-server.local", Addr: lns[1].Addr().String()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Stop(5 * time.Second); err != nil {
			t.Error(err)
		}
	}()
	if p.Pid() <= 0 {
		t.Fatalf("pid %d", p.Pid())
	}
	for i, name := range []string{"one.internal-server.local", "two.internal-server.local"} {
		hello, err := load.ClientHelloRecord(&tls.Config{ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp", bind, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(append(hello, "after"...)); err != nil {
			t.Fatal(err)
		}
		_ = lns[i].(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		s, err := lns[i].Accept()
		if err != nil {
			t.Fatalf("%s: backend %d got no connection: %v", name, i, err)
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, len(hello)+len("after"))
		if _, err := io.ReadFull(s, got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, append(hello, "after"...)) {
			t.Fatalf("%s: the backend got different bytes", name)
		}
	}
}

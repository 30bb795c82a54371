package matcher_test

import (
	"errors"
	"fmt"
	"time"

	"epsproxy/matcher"
)

func Example() {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t := matcher.New(matcher.Options{})

	// A private proxy announces through the JSON-RPC handler, which passes
	// the allowed domains the EPS directory gives that operator.
	errs := t.Announce("private-proxy-1.ga", []string{".internal-server.local"}, []matcher.Item{
		{Domain: "App.Internal-Server.Local."},
		{Domain: "*.internal-server.local", ExpiresAt: now.Add(time.Hour)},
		{Domain: "*.local"},
	}, now)
	for _, err := range errs {
		var c matcher.Coder
		if errors.As(err, &c) {
			fmt.Println(c.Code(), err)
		}
	}

	// An event loop looks up the normalised SNI of a new client.
	var buf [matcher.MaxNameLen + 1]byte
	for _, sni := range []string{"app.internal-server.local", "db.internal-server.local", "a.b.internal-server.local"} {
		host, _ := matcher.AppendNormalized(buf[:0], []byte(sni))
		if a, ok := t.Lookup(host, now); ok {
			fmt.Printf("%s -> %s (via %s)\n", sni, a.Operator, a.Domain)
		} else {
			fmt.Printf("%s -> no match\n", sni)
		}
	}
	// Output:
	// 403 matcher: "*.local": not allowed: not under any domain operator "private-proxy-1.ga" may announce
	// app.internal-server.local -> private-proxy-1.ga (via app.internal-server.local)
	// db.internal-server.local -> private-proxy-1.ga (via *.internal-server.local)
	// a.b.internal-server.local -> no match
}

package matcher

import "testing"

func TestAllowed(t *testing.T) {
	strict := []string{".internal-server.local"}
	inclusive := []string{"example.com"}
	tests := []struct {
		allowed []string
		domain  string
		want    bool
	}{
		// Leading dot: strictly under.
		{strict, "app.internal-server.local", true},
		{strict, "a.b.internal-server.local", true},
		{strict, "APP.Internal-Server.Local.", true},
		{strict, "internal-server.local", false},
		{strict, "evilinternal-server.local", false},
		{strict, "internal-server.local.evil", false},
		{strict, "local", false},
		// No leading dot: the name and everything under it.
		{inclusive, "example.com", true},
		{inclusive, "www.example.com", true},
		{inclusive, "a.b.example.com", true},
		{inclusive, "notexample.com", false},
		{inclusive, "com", false},
		// Wildcards: allowed only if every name they cover is.
		{strict, "*.internal-server.local", true},
		{strict, "*.app.internal-server.local", true},
		{strict, "*.local", false},
		{strict, "*.server.local", false},
		{inclusive, "*.example.com", true},
		{inclusive, "*.x.example.com", true},
		{inclusive, "*.com", false},
		// Several entries: any one suffices.
		{[]string{".a.test", "b.test"}, "x.a.test", true},
		{[]string{".a.test", "b.test"}, "b.test", true},
		{[]string{".a.test", "b.test"}, "a.test", false},
		// Broken entries allow nothing.
		{nil, "example.com", false},
		{[]string{""}, "example.com", false},
		{[]string{"."}, "example.com", false},
		{[]string{"*.example.com"}, "a.example.com", false},
		{[]string{"bad entry"}, "entry", false},
		{[]string{"EXAMPLE.COM."}, "www.example.com", true},
		// Bad domains are never allowed.
		{inclusive, "bad name.example.com", false},
	}
	for _, tc := range tests {
		if got := Allowed(tc.allowed, tc.domain); got != tc.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tc.allowed, tc.domain, got, tc.want)
		}
	}
}

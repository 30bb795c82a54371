package config

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

func TestOperatorName(t *testing.T) {
	leaf := func(cn string, dns ...string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
	}
	for _, tc := range []struct {
		what string
		leaf *x509.Certificate
		want string // "" = no operator
	}{
		{"one name, common name the same", leaf("a.ga", "a.ga"), "a.ga"},
		{"one name, no common name", leaf("", "a.ga"), "a.ga"},
		{"the one name twice", leaf("a.ga", "a.ga", "a.ga"), "a.ga"},
		{"a wildcard", leaf("wild.ga", "*.ga"), ""},
		{"a wildcard beside the name", leaf("a.ga", "a.ga", "*.ga"), ""},
		{"two operators", leaf("a.ga", "a.ga", "b.ga"), ""},
		{"common name only", leaf("a.ga"), ""},
		{"common name another operator", leaf("b.ga", "a.ga"), ""},
		{"no certificate", nil, ""},
	} {
		got, err := OperatorName(tc.leaf)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("%s: %q, %v; want %q", tc.what, got, err, tc.want)
		}
	}
}

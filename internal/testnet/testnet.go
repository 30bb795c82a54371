// Package testnet builds throwaway EPS networks for tests: a PKI in a temporary directory, free
// loopback ports, and settings trees. It is imported only by tests (of several packages, which is
// why it is not a _test file) and must never be needed by a command at run time.
package testnet

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"epsproxy/internal/config"
	"epsproxy/internal/pki"
)

// PKI is a CA and certificates for a set of names, as files in Dir.
type PKI struct {
	Dir string
	CA  *pki.CA
}

// NewPKI issues a root and one certificate per name (CN and DNS SAN = name) into a temp dir.
func NewPKI(t testing.TB, names ...string) *PKI {
	t.Helper()
	ca, err := pki.NewCA("Test Root", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{Dir: t.TempDir(), CA: ca}
	if err := os.WriteFile(filepath.Join(p.Dir, "root.crt"), ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		p.Add(t, n, n)
	}
	return p
}

// Add issues a certificate stored as <file>.crt/.key for the given DNS names.
func (p *PKI) Add(t testing.TB, file string, dnsNames ...string) {
	t.Helper()
	crt, key, err := p.CA.Issue(dnsNames[0], dnsNames, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.Dir, file+".crt"), crt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.Dir, file+".key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TLS is the settings block for the certificate stored under file.
func (p *PKI) TLS(file string) config.TLS {
	return config.TLS{
		CAFile:   config.Path(filepath.Join(p.Dir, "root.crt")),
		CertFile: config.Path(filepath.Join(p.Dir, file+".crt")),
		KeyFile:  config.Path(filepath.Join(p.Dir, file+".key")),
	}
}

// Identity loads the certificate stored under file.
func (p *PKI) Identity(t testing.TB, file string) *config.Identity {
	t.Helper()
	id, err := p.TLS(file).Load()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// FreeAddr returns a loopback address with a port that was free a moment ago. Tests use it where
// an address must be known before the listener opens (a directory naming peers).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

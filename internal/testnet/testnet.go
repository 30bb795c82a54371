// Package testnet builds throwaway EPS networks for tests: a PKI in a temporary directory, free
// loopback ports, and settings trees. It is imported only by tests (of several packages, which is
// why it is not a _test file) and must never be needed by a command at run time.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// Ports for tests come from below the kernel's ephemeral range (32768 and up by default): a port
// picked there with listen(":0") and released until the test binds it can meanwhile become the
// source port of one of the many outgoing connections tests make. Here no outgoing connection
// takes it, and the registry makes sure this process never hands out one port twice. Test
// binaries of several packages run at once, each with its own registry: a port is also locked
// for the life of the process with a lock file (flock, released by the kernel when the process
// ends), so that two processes never hold the same port. Without that, a port a chain process
// freed while it restarted could be taken by another package's test, whose listener then
// received the chain's traffic.
const (
	portLow  = 20000
	portHigh = 32000
)

var ports struct {
	sync.Mutex
	used  map[int]bool
	locks []*os.File // held open: the locks last as long as the process
}

// lockPort takes the machine-wide lock on port for this process; false if another holds it.
func lockPort(port int) bool {
	dir := filepath.Join(os.TempDir(), "epsproxy-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true // no lock directory: the per-process registry alone
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	ports.locks = append(ports.locks, f)
	return true
}

// Addr returns a loopback address whose port is free now and was never handed out before by this
// process. Safe from any goroutine.
func Addr() (string, error) {
	ports.Lock()
	defer ports.Unlock()
	if ports.used == nil {
		ports.used = map[int]bool{}
	}
	for range 1000 {
		port := portLow + rand.IntN(portHigh-portLow)
		if ports.used[port] {
			continue
		}
		ports.used[port] = true // tried: whatever follows, not again
		if !lockPort(port) {
			continue // another test process holds it
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken by someone else
		}
		ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("testnet: no free port in %d-%d", portLow, portHigh)
}

// FreeAddr is Addr for a test: it fails t when there is no free port. Tests use it where an
// address must be known before the listener opens (a directory naming peers, an engine's
// listeners).
func FreeAddr(t testing.TB) string {
	t.Helper()
	a, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

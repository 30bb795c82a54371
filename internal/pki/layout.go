package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"epsproxy/internal/fsutil"
)

// File names and defaults of a Layout directory.
const (
	RootCertFile = "root.crt"
	RootKeyFile  = "root.key"

	// DefaultRootName is the common name of the development root.
	DefaultRootName = "EPS Dev Root"
	// DefaultValidity applies when Layout.ValidFor is zero.
	DefaultValidity = 365 * 24 * time.Hour
	// DevServerName is the leaf of the example internal server.
	DevServerName = "internal-server"

	certPerm = 0o644
	keyPerm  = 0o600
)

// DefaultOperators returns the operator names of the development set: the
// two proxies and a spare operator for tests that need a third party.
func DefaultOperators() []string {
	return []string{"public-proxy-1.ga", "private-proxy-1.ga", "other-operator.ga"}
}

// Layout is a directory holding a root and its leaves:
//
//	Dir/root.crt, Dir/root.key, and Dir/<Name>.crt, Dir/<Name>.key per leaf.
//
// Keys are written with mode 0600, certificates 0644.
type Layout struct {
	Dir string
	// RootName is the root's common name; DefaultRootName when empty.
	RootName string
	Leaves   []Leaf
	// ValidFor is the lifetime of every certificate issued; DefaultValidity when zero.
	ValidFor time.Duration
	// Force re-issues the root and every leaf even if current files exist.
	Force bool
}

// DevLayout returns the development set in dir: the DefaultRootName root,
// one leaf per operator (DefaultOperators when operators is nil), and the
// internal server's leaf, valid for "internal-server",
// "*.internal-server.local", "localhost" and 127.0.0.1.
func DevLayout(dir string, operators []string) Layout {
	if operators == nil {
		operators = DefaultOperators()
	}
	l := Layout{Dir: dir, RootName: DefaultRootName}
	for _, op := range operators {
		l.Leaves = append(l.Leaves, Leaf{Name: op})
	}
	l.Leaves = append(l.Leaves, Leaf{
		Name:     DevServerName,
		DNSNames: []string{"*." + DevServerName + ".local", "localhost"},
		IPs:      []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})},
	})
	return l
}

// Write brings Dir up to date and returns the paths it wrote, in order.
//
// Missing files are created and current ones kept, so calling Write again
// writes nothing. A leaf is current when both its files exist, its key
// matches its certificate, it verifies under the root now and it carries
// exactly the requested names; otherwise it is re-issued. When the root is
// missing, expired or Force is set, a new root is made and every leaf is
// re-issued, because leaves of the old root would no longer verify. A root
// that exists but cannot be loaded is an error rather than overwritten:
// only Force replaces it.
//
// Each file is replaced atomically. While a new root is being written,
// root.crt is absent until every leaf is in place, so an interrupted run
// leaves no root certificate and the next run starts over instead of
// mixing leaves of two roots.
//
// The whole layout is validated before anything is written. Write must not
// run concurrently with another Write on the same directory (files are
// never torn, but certificate and key pairs could end up mismatched).
func (l Layout) Write() (written []string, err error) {
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("pki: layout %s: %w", l.Dir, err)
	}
	if l.RootName == "" {
		l.RootName = DefaultRootName
	}
	if l.ValidFor == 0 {
		l.ValidFor = DefaultValidity
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pki: layout: %w", err)
	}
	ca, err := l.loadRoot()
	if err != nil {
		return nil, fmt.Errorf("pki: layout %s: %w", l.Dir, err)
	}
	fresh := ca == nil
	if fresh {
		if ca, err = NewCA(l.RootName, l.ValidFor); err != nil {
			return nil, err
		}
		// root.crt is the commit marker of a new PKI; see the doc comment.
		if err := os.Remove(l.path(RootCertFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pki: layout: %w", err)
		}
		keyPEM, err := encodeKey(ca.Key)
		if err != nil {
			return nil, fmt.Errorf("pki: layout: root: %w", err)
		}
		if err := l.write(&written, RootKeyFile, keyPEM, keyPerm); err != nil {
			return written, err
		}
	}
	for _, leaf := range l.Leaves {
		if !fresh {
			current, err := l.leafCurrent(ca, leaf)
			if err != nil {
				return written, fmt.Errorf("pki: layout %s: %w", l.Dir, err)
			}
			if current {
				continue
			}
		}
		certPEM, keyPEM, err := ca.IssueLeaf(leaf, l.ValidFor)
		if err != nil {
			return written, err
		}
		// Key first: a crash between the two renames leaves a mismatched
		// pair, which the next run detects and re-issues.
		if err := l.write(&written, leaf.Name+".key", keyPEM, keyPerm); err != nil {
			return written, err
		}
		if err := l.write(&written, leaf.Name+".crt", certPEM, certPerm); err != nil {
			return written, err
		}
	}
	if fresh {
		if err := l.write(&written, RootCertFile, ca.CertPEM, certPerm); err != nil {
			return written, err
		}
	}
	return written, nil
}

func (l Layout) validate() error {
	if l.Dir == "" {
		return errors.New("directory is empty")
	}
	if l.RootName != "" {
		if err := checkCommonName(l.RootName); err != nil {
			return fmt.Errorf("root: %w", err)
		}
	}
	if l.ValidFor != 0 {
		if err := checkValidity(l.ValidFor); err != nil {
			return err
		}
	}
	if len(l.Leaves) > MaxLeaves {
		return fmt.Errorf("%d leaves exceed the maximum %d", len(l.Leaves), MaxLeaves)
	}
	seen := make([]string, 0, len(l.Leaves))
	for _, leaf := range l.Leaves {
		if _, _, err := leaf.sans(); err != nil {
			return err
		}
		if leaf.Name == "root" {
			return errors.New(`leaf name "root" would collide with the root's files`)
		}
		if slices.Contains(seen, leaf.Name) {
			return fmt.Errorf("leaf %q is listed twice", leaf.Name)
		}
		seen = append(seen, leaf.Name)
	}
	return nil
}

// loadRoot returns the existing root, or nil when a new one must be made.
func (l Layout) loadRoot() (*CA, error) {
	if l.Force {
		return nil, nil
	}
	for _, name := range []string{RootCertFile, RootKeyFile} {
		if _, err := os.Stat(l.path(name)); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
	}
	ca, err := loadCA(l.path(RootCertFile), l.path(RootKeyFile))
	if err != nil {
		return nil, fmt.Errorf("root: %w; fix or remove the root files, or force re-issue", err)
	}
	if now := time.Now(); now.After(ca.Cert.NotAfter) || now.Before(ca.Cert.NotBefore) {
		return nil, nil
	}
	return ca, nil
}

// leafCurrent reports whether leaf's files exist and still hold what Write
// would issue. Unreadable files (other than missing) are errors so that a
// permission problem is reported instead of papered over.
func (l Layout) leafCurrent(ca *CA, leaf Leaf) (bool, error) {
	certPEM, err := readSmallFile(l.path(leaf.Name + ".crt"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	keyPEM, err := readSmallFile(l.path(leaf.Name + ".key"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	cert, _, err := decodeCert(certPEM)
	if err != nil {
		return false, nil
	}
	key, err := decodeKey(keyPEM)
	if err != nil || !publicKeysEqual(cert.PublicKey, key.Public()) {
		return false, nil
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}
		if _, err := cert.Verify(opts); err != nil {
			return false, nil
		}
	}
	wantDNS, wantIPs, err := leaf.sans()
	if err != nil {
		return false, err
	}
	if cert.Subject.CommonName != leaf.Name || !sameSet(cert.DNSNames, wantDNS) {
		return false, nil
	}
	if len(cert.IPAddresses) != len(wantIPs) {
		return false, nil
	}
	for _, ip := range wantIPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false, nil
		}
	}
	return true, nil
}

func (l Layout) write(written *[]string, name string, data []byte, perm os.FileMode) error {
	if err := fsutil.WriteFile(filepath.Join(l.Dir, name), perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}); err != nil {
		return fmt.Errorf("pki: layout %s: %w", l.Dir, err)
	}
	*written = append(*written, l.path(name))
	return nil
}

func (l Layout) path(name string) string { return filepath.Join(l.Dir, name) }

// sameSet compares two name lists ignoring order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

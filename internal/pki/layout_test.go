package pki

import (
	"bytes"
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// devFiles lists every file the default DevLayout must produce.
func devFiles() []string {
	files := []string{RootCertFile, RootKeyFile}
	for _, name := range append(DefaultOperators(), DevServerName) {
		files = append(files, name+".crt", name+".key")
	}
	return files
}

type snapshot map[string]struct {
	data    []byte
	modTime time.Time
}

func takeSnapshot(t *testing.T, dir string) snapshot {
	t.Helper()
	s := snapshot{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s[e.Name()] = struct {
			data    []byte
			modTime time.Time
		}{data, info.ModTime()}
	}
	return s
}

func basenames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// checkDevSet verifies every leaf of the dev set against dir's root.
func checkDevSet(t *testing.T, dir string) {
	t.Helper()
	ca, err := LoadCA(filepath.Join(dir, RootCertFile), filepath.Join(dir, RootKeyFile))
	if err != nil {
		t.Fatalf("root: %v", err)
	}
	if ca.Cert.Subject.CommonName != DefaultRootName {
		t.Errorf("root CN %q, want %q", ca.Cert.Subject.CommonName, DefaultRootName)
	}
	for _, name := range append(DefaultOperators(), DevServerName) {
		leaf := readCert(t, filepath.Join(dir, name+".crt"))
		keyData, err := os.ReadFile(filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if !parseKeyPEM(t, keyData).PublicKey.Equal(leaf.PublicKey) {
			t.Errorf("%s: key does not match certificate", name)
		}
		if leaf.Subject.CommonName != name {
			t.Errorf("%s: CN %q", name, leaf.Subject.CommonName)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if err := verifyAs(leaf, ca.Pool(), usage, name); err != nil {
				t.Errorf("%s usage %v: %v", name, usage, err)
			}
		}
	}
	server := readCert(t, filepath.Join(dir, DevServerName+".crt"))
	for _, name := range []string{"x.internal-server.local", "localhost", "127.0.0.1"} {
		if err := verifyAs(server, ca.Pool(), x509.ExtKeyUsageServerAuth, name); err != nil {
			t.Errorf("internal server for %s: %v", name, err)
		}
	}
}

func TestDevLayoutWritesTheDevSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "settings", "certs") // created by Write
	written, err := DevLayout(dir, nil).Write()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := basenames(written), sorted(devFiles()); !slices.Equal(got, want) {
		t.Fatalf("written %q, want %q", got, want)
	}
	if last := filepath.Base(written[len(written)-1]); last != RootCertFile {
		t.Errorf("last file written is %s; root.crt must come last to mark a complete PKI", last)
	}
	for _, name := range devFiles() {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			want = 0o600
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, info.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(devFiles()) {
		t.Errorf("directory holds %d entries, want exactly the %d PKI files (no temporaries)", len(entries), len(devFiles()))
	}
	checkDevSet(t, dir)
}

func TestLayoutSecondWriteKeepsFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := DevLayout(dir, nil).Write(); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, dir)
	written, err := DevLayout(dir, nil).Write()
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 0 {
		t.Errorf("second run wrote %q, want nothing", written)
	}
	after := takeSnapshot(t, dir)
	for name, b := range before {
		a := after[name]
		if !bytes.Equal(a.data, b.data) || !a.modTime.Equal(b.modTime) {
			t.Errorf("%s changed on the second run", name)
		}
	}
}

func TestLayoutForceReissuesEverything(t *testing.T) {
	dir := t.TempDir()
	if _, err := DevLayout(dir, nil).Write(); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, dir)
	oldLeaf := readCert(t, filepath.Join(dir, "public-proxy-1.ga.crt"))

	l := DevLayout(dir, nil)
	l.Force = true
	written, err := l.Write()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := basenames(written), sorted(devFiles()); !slices.Equal(got, want) {
		t.Fatalf("forced run wrote %q, want %q", got, want)
	}
	after := takeSnapshot(t, dir)
	for name := range before {
		if bytes.Equal(before[name].data, after[name].data) {
			t.Errorf("%s unchanged after Force", name)
		}
	}
	checkDevSet(t, dir)
	newRoot := readCert(t, filepath.Join(dir, RootCertFile))
	pool := x509.NewCertPool()
	pool.AddCert(newRoot)
	if err := verifyAs(oldLeaf, pool, x509.ExtKeyUsageClientAuth, ""); err == nil {
		t.Error("a leaf of the old root verifies under the new one; the root was not replaced")
	}
}

func TestLayoutMissingRootReissuesEverything(t *testing.T) {
	for _, missing := range []string{RootCertFile, RootKeyFile} {
		t.Run(missing, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := DevLayout(dir, nil).Write(); err != nil {
				t.Fatal(err)
			}
			oldLeaf := readCert(t, filepath.Join(dir, "private-proxy-1.ga.crt"))
			if err := os.Remove(filepath.Join(dir, missing)); err != nil {
				t.Fatal(err)
			}
			written, err := DevLayout(dir, nil).Write()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := basenames(written), sorted(devFiles()); !slices.Equal(got, want) {
				t.Fatalf("wrote %q, want everything %q", got, want)
			}
			checkDevSet(t, dir)
			root := readCert(t, filepath.Join(dir, RootCertFile))
			pool := x509.NewCertPool()
			pool.AddCert(root)
			if err := verifyAs(oldLeaf, pool, x509.ExtKeyUsageClientAuth, ""); err == nil {
				t.Error("old leaf verifies under the new root")
			}
		})
	}
}

func TestLayoutReissuesOnlyStaleLeaves(t *testing.T) {
	dir := t.TempDir()
	l := DevLayout(dir, nil)
	if _, err := l.Write(); err != nil {
		t.Fatal(err)
	}
	foreign := mustCA(t, "Foreign Root")
	foreignCert, foreignKey, err := foreign.Issue("other-operator.ga", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, strayKey, err := foreign.Issue("private-proxy-1.ga", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// public-proxy-1.ga: key missing; private-proxy-1.ga: key of another
	// certificate; other-operator.ga: signed by another CA.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(dir, "public-proxy-1.ga.key")))
	must(os.WriteFile(filepath.Join(dir, "private-proxy-1.ga.key"), strayKey, 0o600))
	must(os.WriteFile(filepath.Join(dir, "other-operator.ga.crt"), foreignCert, 0o644))
	must(os.WriteFile(filepath.Join(dir, "other-operator.ga.key"), foreignKey, 0o600))
	before := takeSnapshot(t, dir)

	written, err := l.Write()
	if err != nil {
		t.Fatal(err)
	}
	want := sorted([]string{
		"public-proxy-1.ga.crt", "public-proxy-1.ga.key",
		"private-proxy-1.ga.crt", "private-proxy-1.ga.key",
		"other-operator.ga.crt", "other-operator.ga.key",
	})
	if got := basenames(written); !slices.Equal(got, want) {
		t.Fatalf("wrote %q, want %q", got, want)
	}
	after := takeSnapshot(t, dir)
	for _, name := range []string{RootCertFile, RootKeyFile, DevServerName + ".crt", DevServerName + ".key"} {
		if !bytes.Equal(before[name].data, after[name].data) {
			t.Errorf("%s changed although it was current", name)
		}
	}
	checkDevSet(t, dir)
}

func TestLayoutReissuesLeafWhoseNamesChanged(t *testing.T) {
	dir := t.TempDir()
	l := Layout{Dir: dir, Leaves: []Leaf{{Name: "svc", DNSNames: []string{"svc.local"}}}}
	if _, err := l.Write(); err != nil {
		t.Fatal(err)
	}
	l.Leaves[0].IPs = []netip.Addr{netip.MustParseAddr("::1")}
	written, err := l.Write()
	if err != nil {
		t.Fatal(err)
	}
	if got := basenames(written); !slices.Equal(got, []string{"svc.crt", "svc.key"}) {
		t.Fatalf("wrote %q, want the svc pair", got)
	}
	ca, err := LoadCA(filepath.Join(dir, RootCertFile), filepath.Join(dir, RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyAs(readCert(t, filepath.Join(dir, "svc.crt")), ca.Pool(), x509.ExtKeyUsageServerAuth, "::1"); err != nil {
		t.Errorf("re-issued leaf does not carry the new IP: %v", err)
	}
}

func TestLayoutKeepsUnreadableRoot(t *testing.T) {
	dir := t.TempDir()
	if _, err := DevLayout(dir, nil).Write(); err != nil {
		t.Fatal(err)
	}
	corrupt := []byte("not a certificate")
	if err := os.WriteFile(filepath.Join(dir, RootCertFile), corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, dir)
	if _, err := DevLayout(dir, nil).Write(); err == nil {
		t.Fatal("Write succeeded over a corrupt root")
	}
	after := takeSnapshot(t, dir)
	for name := range before {
		if !bytes.Equal(before[name].data, after[name].data) {
			t.Errorf("%s changed although Write failed", name)
		}
	}
	l := DevLayout(dir, nil)
	l.Force = true
	if _, err := l.Write(); err != nil {
		t.Fatalf("Force over a corrupt root: %v", err)
	}
	checkDevSet(t, dir)
}

func TestLayoutRejectsBadInputBeforeWriting(t *testing.T) {
	cases := []struct {
		what   string
		layout func(dir string) Layout
	}{
		{"empty dir", func(string) Layout { return Layout{} }},
		{"duplicate", func(dir string) Layout { return DevLayout(dir, []string{"a.ga", "a.ga"}) }},
		{"operator named like the server", func(dir string) Layout { return DevLayout(dir, []string{DevServerName}) }},
		{"reserved name", func(dir string) Layout { return DevLayout(dir, []string{"root"}) }},
		{"path in name", func(dir string) Layout { return DevLayout(dir, []string{"../x"}) }},
		{"empty name", func(dir string) Layout { return DevLayout(dir, []string{""}) }},
		{"bad root name", func(dir string) Layout { return Layout{Dir: dir, RootName: "a\nb"} }},
		{"negative validity", func(dir string) Layout { return Layout{Dir: dir, ValidFor: -time.Hour} }},
		{"too many leaves", func(dir string) Layout {
			l := Layout{Dir: dir}
			for i := range MaxLeaves + 1 {
				l.Leaves = append(l.Leaves, Leaf{Name: "n" + strings.Repeat("x", i)})
			}
			return l
		}},
	}
	for _, c := range cases {
		dir := filepath.Join(t.TempDir(), "certs")
		if _, err := c.layout(dir).Write(); err == nil {
			t.Errorf("%s: Write succeeded", c.what)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: Write created %s before rejecting its input", c.what, dir)
		}
	}
}

func TestLayoutReplacesExpiredRoot(t *testing.T) {
	dir := t.TempDir()
	expired, err := NewCA(DefaultRootName, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := encodeKey(expired.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, RootCertFile), expired.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, RootKeyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	written, err := DevLayout(dir, nil).Write()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := basenames(written), sorted(devFiles()); !slices.Equal(got, want) {
		t.Fatalf("wrote %q, want everything %q", got, want)
	}
	if readCert(t, filepath.Join(dir, RootCertFile)).Equal(expired.Cert) {
		t.Error("expired root kept")
	}
	checkDevSet(t, dir)
}

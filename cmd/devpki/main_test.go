package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/pki"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writtenFiles returns the base names of the "wrote" lines, sorted.
func writtenFiles(t *testing.T, stdout string) []string {
	t.Helper()
	var names []string
	for line := range strings.Lines(stdout) {
		path, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "wrote ")
		if !ok {
			t.Fatalf("unexpected output line %q", line)
		}
		names = append(names, filepath.Base(path))
	}
	slices.Sort(names)
	return names
}

func pairFiles(names ...string) []string {
	files := []string{pki.RootCertFile, pki.RootKeyFile}
	for _, n := range names {
		files = append(files, n+".crt", n+".key")
	}
	slices.Sort(files)
	return files
}

// verifyPair loads dir/name.{crt,key} as a TLS pair and verifies it under
// dir/root.crt as both a server and a client for host.
func verifyPair(t *testing.T, dir, name, host string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	rootPEM, err := os.ReadFile(filepath.Join(dir, pki.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("root.crt holds no certificate")
	}
	leaf := pair.Leaf
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s as %s, usage %v: %v", name, host, usage, err)
		}
	}
	return leaf
}

func TestDefaultsWriteTheDevSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, stdout, stderr := runCmd(t, "-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := pairFiles("public-proxy-1.ga", "private-proxy-1.ga", "other-operator.ga", "internal-server")
	if got := writtenFiles(t, stdout); !slices.Equal(got, want) {
		t.Fatalf("wrote %q, want %q", got, want)
	}
	for _, op := range []string{"public-proxy-1.ga", "private-proxy-1.ga", "other-operator.ga"} {
		if cn := verifyPair(t, dir, op, op).Subject.CommonName; cn != op {
			t.Errorf("%s: CN %q", op, cn)
		}
	}
	for _, host := range []string{"internal-server", "api.internal-server.local", "localhost", "127.0.0.1"} {
		verifyPair(t, dir, "internal-server", host)
	}
	root, err := pki.LoadCA(filepath.Join(dir, pki.RootCertFile), filepath.Join(dir, pki.RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if root.Cert.Subject.CommonName != "EPS Dev Root" {
		t.Errorf("root CN %q", root.Cert.Subject.CommonName)
	}

	code, stdout, stderr = runCmd(t, "-dir", dir)
	if code != 0 || stdout != "" {
		t.Errorf("second run: exit %d, stdout %q, stderr %q; want silence", code, stdout, stderr)
	}

	oldRoot, _ := os.ReadFile(filepath.Join(dir, pki.RootCertFile))
	code, stdout, stderr = runCmd(t, "-dir", dir, "-force")
	if code != 0 {
		t.Fatalf("-force: exit %d: %s", code, stderr)
	}
	if got := writtenFiles(t, stdout); !slices.Equal(got, want) {
		t.Errorf("-force wrote %q, want %q", got, want)
	}
	if newRoot, _ := os.ReadFile(filepath.Join(dir, pki.RootCertFile)); bytes.Equal(oldRoot, newRoot) {
		t.Error("-force kept the root")
	}
}

func TestOperatorsAndDays(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCmd(t, "-dir", dir, "-operators", "a.ga, b.ga", "-days", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got, want := writtenFiles(t, stdout), pairFiles("a.ga", "b.ga", "internal-server"); !slices.Equal(got, want) {
		t.Fatalf("wrote %q, want %q", got, want)
	}
	leaf := verifyPair(t, dir, "b.ga", "b.ga")
	if life := time.Until(leaf.NotAfter); life > 2*24*time.Hour || life < 47*time.Hour {
		t.Errorf("leaf valid for another %v, want about 2 days", life)
	}
}

func TestErrorsAreOneLineAndNonZero(t *testing.T) {
	cases := [][]string{
		{"-dir", t.TempDir(), "-days", "0"},
		{"-dir", t.TempDir(), "-days", "100000"},
		{"-dir", t.TempDir(), "-operators", "Bad Name"},
		{"-dir", t.TempDir(), "-operators", "a.ga,,b.ga"},
		{"-dir", t.TempDir(), "-operators", "internal-server"},
		{"-no-such-flag"},
		{"-dir", t.TempDir(), "extra"},
	}
	for _, args := range cases {
		code, stdout, stderr := runCmd(t, args...)
		if code == 0 {
			t.Errorf("%q: exit 0", args)
		}
		if stdout != "" {
			t.Errorf("%q: wrote %q despite the error", args, stdout)
		}
		if !strings.HasPrefix(stderr, "devpki: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: stderr %q, want one line starting with devpki:", args, stderr)
		}
	}
}

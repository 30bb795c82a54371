package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCAIsARootThatSignsOnlyLeaves(t *testing.T) {
	ca := mustCA(t, "EPS Dev Root")
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Fatalf("IsCA=%v BasicConstraintsValid=%v, want both true", c.IsCA, c.BasicConstraintsValid)
	}
	if c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("MaxPathLen=%d MaxPathLenZero=%v, want pathlen 0", c.MaxPathLen, c.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; c.KeyUsage != want {
		t.Errorf("KeyUsage=%v, want %v", c.KeyUsage, want)
	}
	if c.Subject.CommonName != "EPS Dev Root" || c.Issuer.CommonName != "EPS Dev Root" {
		t.Errorf("subject %q issuer %q, want both EPS Dev Root", c.Subject.CommonName, c.Issuer.CommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if !bytes.Equal(parseCertPEM(t, ca.CertPEM).Raw, c.Raw) {
		t.Error("CertPEM does not hold Cert")
	}
	if !publicKeysEqual(c.PublicKey, ca.Key.Public()) {
		t.Error("Key does not belong to Cert")
	}
}

func TestIssuedLeafVerifiesForServerAndClientAuth(t *testing.T) {
	ca := mustCA(t, "Test Root")
	certPEM, keyPEM, err := ca.Issue("public-proxy-1.ga", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parseCertPEM(t, certPEM)
	key := parseKeyPEM(t, keyPEM)
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("key does not match certificate")
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if err := verifyAs(leaf, ca.Pool(), usage, "public-proxy-1.ga"); err != nil {
			t.Errorf("verify for usage %v: %v", usage, err)
		}
	}
	if err := verifyAs(leaf, ca.Pool(), x509.ExtKeyUsageServerAuth, "private-proxy-1.ga"); err == nil {
		t.Error("leaf verified for a name it does not carry")
	}
	if leaf.Subject.CommonName != "public-proxy-1.ga" {
		t.Errorf("CN=%q", leaf.Subject.CommonName)
	}
	if !slices.Equal(leaf.DNSNames, []string{"public-proxy-1.ga"}) {
		t.Errorf("DNS SANs=%q, want just the operator name", leaf.DNSNames)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage=%v, want DigitalSignature", leaf.KeyUsage)
	}
	if n := leaf.SerialNumber.BitLen(); leaf.SerialNumber.Sign() <= 0 || n > 128 {
		t.Errorf("serial %v: want positive, at most 128 bits (got %d)", leaf.SerialNumber, n)
	}
	if !leaf.NotBefore.Before(time.Now().Add(-50 * time.Minute)) {
		t.Errorf("NotBefore=%v, want backdated by about an hour", leaf.NotBefore)
	}
	other, _, err := ca.Issue("public-proxy-1.ga", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if parseCertPEM(t, other).SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two leaves got the same serial")
	}
}

func TestIssueAddsNameToSANsOnce(t *testing.T) {
	ca := mustCA(t, "Test Root")
	certPEM, _, err := ca.Issue("a.ga", []string{"b.ga", "a.ga", "b.ga"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseCertPEM(t, certPEM).DNSNames; !slices.Equal(got, []string{"a.ga", "b.ga"}) {
		t.Errorf("DNS SANs=%q, want [a.ga b.ga]", got)
	}
}

func TestWildcardAndIPSANs(t *testing.T) {
	ca := mustCA(t, "Test Root")
	certPEM, _, err := ca.IssueLeaf(Leaf{
		Name:     "internal-server",
		DNSNames: []string{"*.internal-server.local", "localhost"},
		IPs:      []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::ffff:127.0.0.1")},
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parseCertPEM(t, certPEM)
	if len(leaf.IPAddresses) != 1 {
		t.Errorf("IP SANs=%v, want 127.0.0.1 once (the mapped form is the same address)", leaf.IPAddresses)
	}
	for _, name := range []string{"internal-server", "test.internal-server.local", "localhost", "127.0.0.1"} {
		if err := verifyAs(leaf, ca.Pool(), x509.ExtKeyUsageServerAuth, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"a.b.internal-server.local", "internal-server.local", "127.0.0.2", "other.local"} {
		if err := verifyAs(leaf, ca.Pool(), x509.ExtKeyUsageServerAuth, name); err == nil {
			t.Errorf("%s verified but is not covered by the SANs", name)
		}
	}
}

func TestLeafNeverOutlivesItsCA(t *testing.T) {
	ca, err := NewCA("Short Root", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.Issue("a.ga", nil, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseCertPEM(t, certPEM).NotAfter; !got.Equal(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter=%v, want clamped to the CA's %v", got, ca.Cert.NotAfter)
	}
}

func TestBadInputIsAnError(t *testing.T) {
	if _, err := NewCA("", time.Hour); err == nil {
		t.Error("NewCA with empty name succeeded")
	}
	if _, err := NewCA(strings.Repeat("x", MaxCommonNameLen+1), time.Hour); err == nil {
		t.Error("NewCA with an over-long name succeeded")
	}
	if _, err := NewCA("bad\x00name", time.Hour); err == nil {
		t.Error("NewCA with a control character succeeded")
	}
	for _, d := range []time.Duration{0, -time.Hour, MaxValidity + time.Hour} {
		if _, err := NewCA("Root", d); err == nil {
			t.Errorf("NewCA with validity %v succeeded", d)
		}
	}

	ca := mustCA(t, "Test Root")
	tooMany := make([]string, MaxSANs)
	for i := range tooMany {
		tooMany[i] = "n" + strings.Repeat("x", i) + ".ga"
	}
	cases := []struct {
		what string
		leaf Leaf
		d    time.Duration
	}{
		{"empty name", Leaf{}, time.Hour},
		{"wildcard name", Leaf{Name: "*.a.ga"}, time.Hour},
		{"upper case", Leaf{Name: "Public.ga"}, time.Hour},
		{"empty label", Leaf{Name: "a..ga"}, time.Hour},
		{"leading dash", Leaf{Name: "-a.ga"}, time.Hour},
		{"path separator", Leaf{Name: "../etc/passwd"}, time.Hour},
		{"space", Leaf{Name: "a b.ga"}, time.Hour},
		{"long label", Leaf{Name: strings.Repeat("a", 64) + ".ga"}, time.Hour},
		{"bad SAN", Leaf{Name: "a.ga", DNSNames: []string{"a.*.ga"}}, time.Hour},
		{"too many SANs", Leaf{Name: "a.ga", DNSNames: tooMany}, time.Hour},
		{"zero IP", Leaf{Name: "a.ga", IPs: []netip.Addr{{}}}, time.Hour},
		{"IP with zone", Leaf{Name: "a.ga", IPs: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}, time.Hour},
		{"zero validity", Leaf{Name: "a.ga"}, 0},
		{"too long validity", Leaf{Name: "a.ga"}, MaxValidity + 1},
	}
	for _, c := range cases {
		if _, _, err := ca.IssueLeaf(c.leaf, c.d); err == nil {
			t.Errorf("%s: IssueLeaf succeeded", c.what)
		}
	}
	var nilCA *CA
	if _, _, err := nilCA.Issue("a.ga", nil, time.Hour); err == nil {
		t.Error("Issue on a nil CA succeeded")
	}
	if _, _, err := (&CA{}).Issue("a.ga", nil, time.Hour); err == nil {
		t.Error("Issue on a zero CA succeeded")
	}
}

func writeCA(t *testing.T, dir string, ca *CA) (certFile, keyFile string) {
	t.Helper()
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestLoadCARoundTrip(t *testing.T) {
	orig := mustCA(t, "Test Root")
	certFile, keyFile := writeCA(t, t.TempDir(), orig)
	loaded, err := LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(orig.Cert) || !bytes.Equal(loaded.CertPEM, orig.CertPEM) {
		t.Fatal("loaded certificate differs from the original")
	}
	certPEM, _, err := loaded.Issue("added.ga", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyAs(parseCertPEM(t, certPEM), orig.Pool(), x509.ExtKeyUsageClientAuth, "added.ga"); err != nil {
		t.Errorf("leaf issued by the loaded CA does not verify under the original root: %v", err)
	}
}

func TestLoadCARejectsWrongFiles(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, "Test Root")
	certFile, keyFile := writeCA(t, dir, ca)
	otherCert, otherKey := writeCA(t, t.TempDir(), mustCA(t, "Other Root"))

	leafPEM, leafKeyPEM, err := ca.Issue("leaf.ga", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leafFile, leafKeyFile := write("leaf.crt", leafPEM), write("leaf.key", leafKeyPEM)
	garbage := write("garbage", []byte("not PEM at all"))
	huge := write("huge", bytes.Repeat([]byte("A"), MaxPEMFileSize+1))
	swapped := write("swapped", leafKeyPEM) // a key where a certificate belongs

	cases := []struct{ what, cert, key string }{
		{"missing cert", filepath.Join(dir, "nope.crt"), keyFile},
		{"missing key", certFile, filepath.Join(dir, "nope.key")},
		{"garbage cert", garbage, keyFile},
		{"garbage key", certFile, garbage},
		{"oversized cert", huge, keyFile},
		{"key in cert file", swapped, keyFile},
		{"cert in key file", certFile, certFile},
		{"key of another CA", certFile, otherKey},
		{"cert of another CA", otherCert, keyFile},
		{"leaf as CA", leafFile, leafKeyFile},
	}
	for _, c := range cases {
		if _, err := LoadCA(c.cert, c.key); err == nil {
			t.Errorf("%s: LoadCA succeeded", c.what)
		}
	}
}

func TestFingerprintIsSHA256OfDER(t *testing.T) {
	ca := mustCA(t, "Test Root")
	a, _, err := ca.Issue("a.ga", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der := parseCertPEM(t, a).Raw
	sum := sha256.Sum256(der)
	if got, want := Fingerprint(der), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Fingerprint=%s, want %s", got, want)
	}
	if got := Fingerprint(der); got != strings.ToLower(got) || len(got) != 64 {
		t.Errorf("Fingerprint=%q, want 64 lowercase hex digits", got)
	}
	if Fingerprint(der) == Fingerprint(ca.Cert.Raw) {
		t.Error("two different certificates share a fingerprint")
	}
}

// FuzzParseCA checks that arbitrary bytes in the certificate or key file
// give an error, never a panic or a CA that does not hold together.
func FuzzParseCA(f *testing.F) {
	ca := mustCA(f, "Fuzz Root")
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.CertPEM, keyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), keyPEM)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		got, err := ParseCA(certPEM, keyPEM)
		if err != nil {
			return
		}
		if !got.Cert.IsCA || !publicKeysEqual(got.Cert.PublicKey, got.Key.Public()) {
			t.Fatal("ParseCA accepted an inconsistent CA")
		}
	})
}

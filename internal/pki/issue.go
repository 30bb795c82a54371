package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Leaf describes one end-entity certificate.
type Leaf struct {
	// Name is the common name, the first DNS SAN and, in a Layout, the
	// file stem (<Name>.crt, <Name>.key). A lowercase DNS name, no wildcard.
	Name string
	// DNSNames are extra DNS SANs; "*." wildcards are allowed. Name need
	// not be repeated; duplicates are dropped.
	DNSNames []string
	// IPs are IP SANs.
	IPs []netip.Addr
}

// Issue signs a new ECDSA P-256 leaf for commonName with SANs commonName
// plus dnsNames, usable for both TLS server and client authentication. It
// is IssueLeaf for a Leaf without IP SANs.
//
// Safe for concurrent use.
func (ca *CA) Issue(commonName string, dnsNames []string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.IssueLeaf(Leaf{Name: commonName, DNSNames: dnsNames}, validFor)
}

// IssueLeaf signs a new ECDSA P-256 leaf for l: a fresh key, a random
// 128-bit serial, NotBefore an hour ago, KeyUsage DigitalSignature and
// ExtKeyUsage ServerAuth plus ClientAuth. NotAfter is validFor from now but
// never later than the CA's own NotAfter, since a leaf cannot verify once
// its root has expired. The key is returned as PEM PKCS#8.
//
// Safe for concurrent use.
func (ca *CA) IssueLeaf(l Leaf, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, nil, errors.New("pki: issue: CA is not initialised; use NewCA, ParseCA or LoadCA")
	}
	dnsNames, ips, err := l.sans()
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue: %w", err)
	}
	if err := checkValidity(validFor); err != nil {
		return nil, nil, fmt.Errorf("pki: issue %q: %w", l.Name, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %q: generate key: %w", l.Name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %q: %w", l.Name, err)
	}
	now := time.Now()
	notAfter := now.Add(validFor)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: l.Name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %q: sign: %w", l.Name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %q: %w", l.Name, err)
	}
	return encodeCert(der), keyPEM, nil
}

// sans validates l and returns its SANs in certificate order: Name first,
// then DNSNames without duplicates, then IPs without duplicates.
func (l Leaf) sans() ([]string, []net.IP, error) {
	if err := checkHostName(l.Name, false); err != nil {
		return nil, nil, fmt.Errorf("leaf name: %w", err)
	}
	if n := 1 + len(l.DNSNames) + len(l.IPs); n > MaxSANs {
		return nil, nil, fmt.Errorf("leaf %q: %d SANs exceed the maximum %d", l.Name, n, MaxSANs)
	}
	dnsNames := []string{l.Name}
	for _, d := range l.DNSNames {
		if err := checkHostName(d, true); err != nil {
			return nil, nil, fmt.Errorf("leaf %q: %w", l.Name, err)
		}
		if !slices.Contains(dnsNames, d) {
			dnsNames = append(dnsNames, d)
		}
	}
	var ips []net.IP
	var seen []netip.Addr
	for _, a := range l.IPs {
		if !a.IsValid() {
			return nil, nil, fmt.Errorf("leaf %q: invalid (zero) IP address", l.Name)
		}
		a = a.Unmap()
		if a.Zone() != "" {
			return nil, nil, fmt.Errorf("leaf %q: IP %s has a zone, which a certificate cannot carry", l.Name, a)
		}
		if !slices.Contains(seen, a) {
			seen = append(seen, a)
			ips = append(ips, net.IP(a.AsSlice()))
		}
	}
	return dnsNames, ips, nil
}

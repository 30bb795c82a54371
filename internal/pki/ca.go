package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"
)

// CA is a root certificate authority that can issue leaves.
//
// A CA is never modified after NewCA, ParseCA or LoadCA return it, so one
// value may be shared by any number of goroutines; callers must not modify
// its fields either.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// NewCA makes a self-signed ECDSA P-256 root valid from an hour ago until
// validFor from now. Its path length is 0: it signs leaves, never other CAs.
//
// Safe for concurrent use.
func NewCA(commonName string, validFor time.Duration) (*CA, error) {
	if err := checkCommonName(commonName); err != nil {
		return nil, fmt.Errorf("pki: new CA: %w", err)
	}
	if err := checkValidity(validFor); err != nil {
		return nil, fmt.Errorf("pki: new CA %q: %w", commonName, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA %q: generate key: %w", commonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("pki: new CA %q: %w", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA %q: sign: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA %q: parse own certificate: %w", commonName, err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, nil
}

// ParseCA builds a CA from a PEM certificate and a PEM PKCS#8 key, checking
// that the certificate is a CA allowed to sign certificates and that the key
// belongs to it.
//
// Safe for concurrent use.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return ca, nil
}

// LoadCA reads a CA written earlier (root.crt and root.key of a Layout, for
// instance) so that more leaves can be added to it. See ParseCA for the checks.
//
// Safe for concurrent use; it only reads the files.
func LoadCA(certFile, keyFile string) (*CA, error) {
	ca, err := loadCA(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	return ca, nil
}

func loadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := readSmallFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readSmallFile(keyFile)
	if err != nil {
		return nil, err
	}
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	return ca, nil
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, der, err := decodeCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("CA %q may not sign certificates (no CertSign key usage)", cert.Subject.CommonName)
	}
	key, err := decodeKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("CA key does not belong to certificate %q", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, nil
}

// Pool returns a new pool holding only this root, ready for
// tls.Config.RootCAs, tls.Config.ClientCAs or x509.VerifyOptions.Roots.
//
// Safe for concurrent use; each call returns a fresh pool.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	if ca != nil && ca.Cert != nil {
		pool.AddCert(ca.Cert)
	}
	return pool
}

// newSerial returns a positive random serial of at most 128 bits; RFC 5280
// wants serials unpredictable and unique per issuer, and 128 random bits
// make collisions negligible without any state.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for range 8 {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
	return nil, errors.New("serial number: random source keeps returning zero")
}

// readSmallFile reads at most MaxPEMFileSize bytes and refuses larger files,
// so pointing LoadCA at a wrong, huge file fails fast instead of eating memory.
func readSmallFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPEMFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxPEMFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes; not a PEM certificate or key", name, MaxPEMFileSize)
	}
	return data, nil
}

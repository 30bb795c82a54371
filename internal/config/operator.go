package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// The one rule for who a certificate of the signaling network stands for. Every link uses it:
// the EPS nodes' local API and peer link, the proxies' EPS endpoint, and each side that dials
// one of those.

// OperatorName is the operator a certificate stands for: its one DNS name (subject alternative
// name), exactly. A certificate with no DNS name, with different ones, or with a wildcard names no
// operator: a wildcard issued by the network's CA must not pass for every operator under it, nor
// a certificate with many names for each of them. The common name, if set, must be that name too.
func OperatorName(leaf *x509.Certificate) (string, error) {
	if leaf == nil {
		return "", errors.New("no certificate")
	}
	name := ""
	for _, n := range leaf.DNSNames {
		switch {
		case strings.Contains(n, "*"):
			return "", fmt.Errorf("certificate for %q has the wildcard name %q: no operator identity", leaf.Subject.CommonName, n)
		case name != "" && n != name:
			return "", fmt.Errorf("certificate names %q and %q: an operator identity names one operator", name, n)
		}
		name = n
	}
	if name == "" {
		return "", fmt.Errorf("certificate for %q has no DNS name: no operator identity", leaf.Subject.CommonName)
	}
	if cn := leaf.Subject.CommonName; cn != "" && cn != name {
		return "", fmt.Errorf("certificate's common name %q is not its DNS name %q", cn, name)
	}
	return name, nil
}

// VerifiedOperator is the operator of the client certificate a TLS connection verified against
// the network's CA; an error when the client presented none.
func VerifiedOperator(cs *tls.ConnectionState) (string, *x509.Certificate, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", nil, errors.New("no client certificate from the network's CA")
	}
	leaf := cs.VerifiedChains[0][0]
	name, err := OperatorName(leaf)
	return name, leaf, err
}

// verifyOperator checks, once the chain is verified, that the server is the operator name and
// nothing wider.
func verifyOperator(name string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server sent no certificate")
		}
		got, err := OperatorName(cs.PeerCertificates[0])
		if err != nil {
			return err
		}
		if got != name {
			return fmt.Errorf("the server is %q, not %q", got, name)
		}
		return nil
	}
}

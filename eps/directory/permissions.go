package directory

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"epsproxy/internal/config"
)

// Errors of CanCall; callers map them to JSON-RPC codes.
var (
	ErrUnknownOperator = errors.New("unknown operator")
	ErrNoSuchMethod    = errors.New("method not found")
	ErrNotAllowed      = errors.New("permission denied")
)

// CanCall checks that caller may call method at callee: the callee must offer the method and
// the caller must belong to a group of the method or of its service.
func (d *Directory) CanCall(caller, callee, method string) error {
	from := d.entries[caller]
	if from == nil {
		return fmt.Errorf("%w %q (the caller)", ErrUnknownOperator, caller)
	}
	to := d.entries[callee]
	if to == nil {
		return fmt.Errorf("%w %q", ErrUnknownOperator, callee)
	}
	svc, m := to.Method(method)
	if m == nil {
		return fmt.Errorf("%w: %s does not offer %q", ErrNoSuchMethod, callee, method)
	}
	if from.InGroup(m.Groups) || from.InGroup(svc.Groups) {
		return nil
	}
	return fmt.Errorf("%w: %s may not call %s.%s", ErrNotAllowed, caller, callee, method)
}

// Fingerprint is the pin form of a certificate: lowercase hex SHA-256 of its DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Identify returns the operator a verified peer certificate speaks for: its one DNS name, by
// config.OperatorName's rule (exactly one name, no wildcard), which must be an operator of the
// directory. If that operator pins certificates, the leaf must be one of them.
func (d *Directory) Identify(leaf *x509.Certificate) (string, error) {
	name, err := config.OperatorName(leaf)
	if err != nil {
		return "", err
	}
	if d.entries[name] == nil {
		return "", fmt.Errorf("certificate for %q names no operator of the directory", name)
	}
	if err := d.Pinned(name, leaf); err != nil {
		return "", err
	}
	return name, nil
}

// Pinned reports whether the directory pins certificates for name and, if so, whether leaf is
// one of them. Used by the dialling side to check the node it reached.
func (d *Directory) Pinned(name string, leaf *x509.Certificate) error {
	e := d.entries[name]
	if e == nil || len(e.Certificates) == 0 {
		return nil
	}
	fp := Fingerprint(leaf)
	for _, p := range e.Certificates {
		if p == fp {
			return nil
		}
	}
	return fmt.Errorf("%s presented a certificate the directory does not pin for it", name)
}

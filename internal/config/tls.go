package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLS names the files of one TLS identity: the CA that peers must chain to, and this side's
// certificate and key. The same block serves as server and client identity, because every link in
// the project is mutual TLS.
type TLS struct {
	CAFile   Path `yaml:"ca_file"`
	CertFile Path `yaml:"cert_file"`
	KeyFile  Path `yaml:"key_file"`
}

// Identity is a loaded TLS block.
type Identity struct {
	Roots *x509.CertPool
	Cert  tls.Certificate
}

// Check verifies that the three files are named and exist, without parsing them. Validate methods
// call it so that a missing file is reported with the settings file that named it.
func (t TLS) Check() error {
	for key, p := range map[string]Path{"ca_file": t.CAFile, "cert_file": t.CertFile, "key_file": t.KeyFile} {
		if p == "" {
			return Errorf(key, "missing")
		}
		if _, err := os.Stat(string(p)); err != nil {
			return Errorf(key, "%v (%s)", unwrapPathError(err), p)
		}
	}
	return nil
}

// Load reads the files; errors name the key (relative to the block) and the problem.
func (t TLS) Load() (*Identity, error) {
	if t.CAFile == "" {
		return nil, Errorf("ca_file", "missing: the CA certificate that peers are verified against")
	}
	if t.CertFile == "" {
		return nil, Errorf("cert_file", "missing")
	}
	if t.KeyFile == "" {
		return nil, Errorf("key_file", "missing")
	}
	pem, err := os.ReadFile(string(t.CAFile))
	if err != nil {
		return nil, Errorf("ca_file", "%v", unwrapPathError(err)).withPath(t.CAFile)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, Errorf("ca_file", "no PEM certificate in %s", t.CAFile)
	}
	if _, err := os.Stat(string(t.CertFile)); err != nil {
		return nil, Errorf("cert_file", "%v", unwrapPathError(err)).withPath(t.CertFile)
	}
	if _, err := os.Stat(string(t.KeyFile)); err != nil {
		return nil, Errorf("key_file", "%v", unwrapPathError(err)).withPath(t.KeyFile)
	}
	cert, err := tls.LoadX509KeyPair(string(t.CertFile), string(t.KeyFile))
	if err != nil {
		return nil, Errorf("cert_file", "cannot load the key pair %s / %s: %v", t.CertFile, t.KeyFile, err)
	}
	return &Identity{Roots: roots, Cert: cert}, nil
}

func (e *KeyError) withPath(p Path) *KeyError {
	e.Problem = fmt.Sprintf("%s (%s)", e.Problem, p)
	return e
}

// ServerConfig requires clients to present a certificate that chains to the CA. Callers check
// the client's name themselves (VerifyConnection or the handler), because what name is allowed
// depends on the link.
func (id *Identity) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{id.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    id.Roots,
	}
}

// ClientConfig verifies the server against the CA as the operator serverName (OperatorName's
// rule: that name exactly, no wildcard) and presents this identity. With serverName empty the
// caller sets ServerName per connection and checks the operator itself.
func (id *Identity) ClientConfig(serverName string) *tls.Config {
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{id.Cert},
		RootCAs:      id.Roots,
		ServerName:   serverName,
	}
	if serverName != "" {
		tc.VerifyConnection = verifyOperator(serverName)
	}
	return tc
}

// Package pki makes the throwaway certificates that development setups and
// test suites use for the EPS signalling network's mutual TLS.
//
// Typical use in a test:
//
//	ca, err := pki.NewCA("Test Root", time.Hour)
//	certPEM, keyPEM, err := ca.Issue("public-proxy-1.ga", nil, time.Hour)
//	pair, err := tls.X509KeyPair(certPEM, keyPEM)
//	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: ca.Pool(), ClientCAs: ca.Pool()}
//
// and to keep a development directory populated (what cmd/devpki does):
//
//	written, err := pki.DevLayout("settings/dev/certs", nil).Write()
//
// An operator's identity is the name in its certificate: the leaf's common
// name, which is always also its first DNS SAN. Every leaf carries both the
// ServerAuth and ClientAuth extended key usages because nodes present the
// same certificate whichever side of a connection they are on.
//
// The package owns certificate and key generation, their PEM encoding, and
// the files of a Layout directory. It must not touch anything outside the
// directory it is given, must not reach the network, and holds no global
// state. It is a development and test tool: keys are written unencrypted,
// so nothing it makes belongs in production.
package pki

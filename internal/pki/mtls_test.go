package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

const handshakeTimeout = 5 * time.Second

func keyPair(t *testing.T, ca *CA, name string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(name, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("tls.X509KeyPair: %v", err)
	}
	return pair
}

type serverResult struct {
	peer *x509.Certificate
	err  error
}

// serveOnce accepts one connection on 127.0.0.1, requires a client
// certificate from clientCAs, echoes one byte, and reports what it saw.
func serveOnce(t *testing.T, serverCert tls.Certificate, clientCAs *x509.CertPool) (addr string, result <-chan serverResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg := &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS13,
	}
	ch := make(chan serverResult, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			ch <- serverResult{err: err}
			return
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(handshakeTimeout))
		conn := tls.Server(raw, cfg)
		if err := conn.Handshake(); err != nil {
			ch <- serverResult{err: err}
			return
		}
		var b [1]byte
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			ch <- serverResult{err: err}
			return
		}
		if _, err := conn.Write(b[:]); err != nil {
			ch <- serverResult{err: err}
			return
		}
		ch <- serverResult{peer: conn.ConnectionState().PeerCertificates[0]}
	}()
	return ln.Addr().String(), ch
}

// exchange dials addr, sends one byte and waits for the echo.
func exchange(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	dialer := &net.Dialer{Timeout: handshakeTimeout}
	raw, err := dialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	conn := tls.Client(raw, cfg)
	if err := conn.Handshake(); err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte{'x'}); err != nil {
		return nil, err
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return nil, err
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

func wait(t *testing.T, ch <-chan serverResult) serverResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(2 * handshakeTimeout):
		t.Fatal("server did not finish")
		return serverResult{}
	}
}

func TestMutualTLSBetweenOperators(t *testing.T) {
	ca := mustCA(t, "Test Root")
	addr, result := serveOnce(t, keyPair(t, ca, "public-proxy-1.ga"), ca.Pool())

	serverPeer, err := exchange(addr, &tls.Config{
		Certificates: []tls.Certificate{keyPair(t, ca, "private-proxy-1.ga")},
		RootCAs:      ca.Pool(),
		ServerName:   "public-proxy-1.ga",
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	if serverPeer.Subject.CommonName != "public-proxy-1.ga" {
		t.Errorf("client sees server %q", serverPeer.Subject.CommonName)
	}
	r := wait(t, result)
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	if r.peer.Subject.CommonName != "private-proxy-1.ga" || len(r.peer.DNSNames) == 0 || r.peer.DNSNames[0] != "private-proxy-1.ga" {
		t.Errorf("server sees client CN %q SANs %q, want private-proxy-1.ga", r.peer.Subject.CommonName, r.peer.DNSNames)
	}
}

func TestMutualTLSRefusesClientOfAnotherCA(t *testing.T) {
	ca := mustCA(t, "Test Root")
	foreign := mustCA(t, "Foreign Root")
	addr, result := serveOnce(t, keyPair(t, ca, "public-proxy-1.ga"), ca.Pool())

	// A crypto/tls client withholds a certificate the server's CA list does
	// not name; GetClientCertificate sends it anyway, as an impostor would,
	// so the server's chain verification is what gets tested.
	foreignPair := keyPair(t, foreign, "private-proxy-1.ga")
	_, clientErr := exchange(addr, &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &foreignPair, nil
		},
		RootCAs:    ca.Pool(),
		ServerName: "public-proxy-1.ga",
		MinVersion: tls.VersionTLS13,
	})
	if clientErr == nil {
		t.Error("client with a foreign certificate completed an exchange")
	}
	r := wait(t, result)
	var unknown x509.UnknownAuthorityError
	if !errors.As(r.err, &unknown) {
		t.Errorf("server error = %v, want an unknown-authority refusal", r.err)
	}
}

func TestClientRefusesServerOfAnotherCA(t *testing.T) {
	ca := mustCA(t, "Test Root")
	foreign := mustCA(t, "Foreign Root")
	addr, result := serveOnce(t, keyPair(t, foreign, "public-proxy-1.ga"), ca.Pool())

	_, err := exchange(addr, &tls.Config{
		Certificates: []tls.Certificate{keyPair(t, ca, "private-proxy-1.ga")},
		RootCAs:      ca.Pool(),
		ServerName:   "public-proxy-1.ga",
		MinVersion:   tls.VersionTLS13,
	})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("client error = %v, want an unknown-authority refusal", err)
	}
	if r := wait(t, result); r.err == nil {
		t.Error("server completed an exchange with a client that refused it")
	}
}

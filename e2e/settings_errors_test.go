package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"epsproxy/internal/chain"
)

// badSettingsFile is the overlay each case writes; the error must name it.
const badSettingsFile = "999_zz_bad.yml"

// Bad settings stop `proxy run public`, `proxy run private` and `eps server run` with a non-zero
// status and ONE line on stderr that names the file, the key and the problem. The file is the
// settings file that set the key, except for a missing certificate or key file, where it is the
// missing file (resolved against the settings file's directory); a port in use names the address.
func TestBadSettingsFailInOneLine(t *testing.T) {
	t.Parallel()
	c := newChain(t) // a settings copy with a PKI; nothing runs
	// A port held by someone else.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	inUse := busy.Addr().String()

	type tc struct {
		name, body string
		want       []string // fragments of the one line, besides the command's name
	}
	roles := []struct {
		process, role, prefix string
		cases                 []tc
	}{
		{chain.Public, "public-proxy-1", "proxy:", []tc{
			{"unknown key", "public: {tls_bnid: x}\n", []string{badSettingsFile, `"public.tls_bnid"`, "unknown key"}},
			{"wrong type", "public: {max_pairs: many}\n", []string{badSettingsFile, `"public.max_pairs"`, "whole number"}},
			{"out of range", "public: {relay_loops: -3}\n", []string{badSettingsFile, `"public.relay_loops"`, "out of range"}},
			{"missing certificate file", "tls: {cert_file: nosuch.crt}\n", []string{`"tls.cert_file"`, "roles/public-proxy-1/nosuch.crt", "no such file"}},
			{"TLS port in use", fmt.Sprintf("public: {tls_bind: %q}\n", inUse), []string{inUse, "address already in use"}},
			{"internal port in use", fmt.Sprintf("public: {internal_bind: %q}\n", inUse), []string{inUse, "address already in use"}},
			{"admin listener off loopback", "admin: {bind: \"0.0.0.0:1\"}\n", []string{badSettingsFile, `"admin.bind"`, "not a loopback address"}},
		}},
		{chain.Private, "private-proxy-1", "proxy:", []tc{
			{"unknown key", "private: {dial_timeuot: 1s}\n", []string{badSettingsFile, `"private.dial_timeuot"`, "unknown key"}},
			{"wrong type", "private: {dial_timeout: [1]}\n", []string{badSettingsFile, `"private.dial_timeout"`, "duration"}},
			{"pipe size out of range", "private: {pipe_size: 100}\n", []string{badSettingsFile, `"private.pipe_size"`, "out of range"}},
			{"unknown proxy_protocol", "private: {proxy_protocol: v1}\n", []string{badSettingsFile, `"private.proxy_protocol"`, "unknown value"}},
			{"missing certificate file", "tls: {key_file: nosuch.key}\n", []string{`"tls.key_file"`, "roles/private-proxy-1/nosuch.key", "no such file"}},
			{"port in use", fmt.Sprintf("eps: {listen: %q}\n", inUse), []string{inUse, "address already in use"}},
		}},
		{chain.PublicEPS, "public-proxy-eps-1", "eps:", []tc{
			{"unknown key", "peer: {bnid: x}\n", []string{badSettingsFile, `"peer.bnid"`, "unknown key"}},
			{"wrong type", "max_inflight: lots\n", []string{badSettingsFile, `"max_inflight"`, "whole number"}},
			{"admin listener off loopback", "admin: {bind: \"[::]:1\"}\n", []string{badSettingsFile, `"admin.bind"`, "not a loopback address"}},
			{"missing certificate file", "tls: {cert_file: nosuch.crt}\n", []string{`"tls.cert_file"`, "roles/public-proxy-eps-1/nosuch.crt", "no such file"}},
			// The peer link opens after the local API, which must not leave a line behind.
			{"port in use", fmt.Sprintf("peer: {bind: %q}\n", inUse), []string{inUse, "address already in use"}},
		}},
	}
	for _, r := range roles {
		for _, k := range r.cases {
			what := r.process + ", " + k.name
			path := filepath.Join(c.Dir, "settings", "dev", "roles", r.role, badSettingsFile)
			if err := c.WriteOverlay("roles/"+r.role, badSettingsFile, k.body); err != nil {
				t.Fatal(err)
			}
			code, stderr := runToExit(t, c, r.process)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			msg := strings.TrimRight(stderr, "\n")
			t.Logf("%s: exit %d, stderr:\n%s", what, code, msg)
			if code == 0 {
				t.Errorf("%s: exit status 0, want non-zero", what)
			}
			if n := strings.Count(msg, "\n") + 1; msg == "" || n != 1 {
				t.Errorf("%s: %d lines on stderr, want one", what, n)
			}
			last := msg[strings.LastIndex(msg, "\n")+1:]
			if !strings.HasPrefix(last, r.prefix) {
				t.Errorf("%s: the error line does not start with %q: %q", what, r.prefix, last)
			}
			for _, f := range k.want {
				if !strings.Contains(last, f) {
					t.Errorf("%s: the error line does not name %s: %q", what, f, last)
				}
			}
		}
	}
}

// runToExit runs a process of the chain until it exits (at most 20 s) and returns its exit
// status and stderr.
func runToExit(t *testing.T, c *chain.Chain, name string) (int, string) {
	t.Helper()
	cmd, err := c.Command(name)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s was still running 20 s after starting with bad settings\n%s", name, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

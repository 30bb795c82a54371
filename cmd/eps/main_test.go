package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"epsproxy/internal/testnet"
)

// buildEPS compiles this command once per test binary run.
func buildEPS(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "eps")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type role struct {
	name, peer, local, dir string
}

// writeNet writes a PKI, a directory and one settings directory per operator.
func writeNet(t *testing.T) (a, b role) {
	t.Helper()
	p := testnet.NewPKI(t, "a.test", "b.test")
	root := t.TempDir()
	a = role{name: "a.test", peer: testnet.FreeAddr(t), local: testnet.FreeAddr(t)}
	b = role{name: "b.test", peer: testnet.FreeAddr(t), local: testnet.FreeAddr(t)}
	must(t, os.MkdirAll(filepath.Join(root, "directory"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "directory", "001.yml"), []byte(fmt.Sprintf(`
operators:
  a.test: {groups: [g], node: {address: "%s"}}
  b.test: {groups: [g], node: {address: "%s"}}
`, a.peer, b.peer)), 0o644))
	for _, r := range []*role{&a, &b} {
		r.dir = filepath.Join(root, "roles", r.name)
		must(t, os.MkdirAll(r.dir, 0o755))
		tls := p.TLS(r.name)
		must(t, os.WriteFile(filepath.Join(r.dir, "001.yml"), []byte(fmt.Sprintf(`
name: %s
tls: {ca_file: %s, cert_file: %s, key_file: %s}
peer: {bind: "%s"}
local: {bind: "%s"}
directory: {paths: [../../directory]}
`, r.name, tls.CAFile, tls.CertFile, tls.KeyFile, r.peer, r.local)), 0o644))
	}
	return a, b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestTwoNodeProcessesRouteACall(t *testing.T) {
	bin := buildEPS(t)
	a, b := writeNet(t)
	// a's node has an admin listener and a service endpoint (nobody listens there).
	adminAddr, service := testnet.FreeAddr(t), "https://"+testnet.FreeAddr(t)+"/jsonrpc"
	for _, r := range []role{a, b} {
		cmd := exec.Command(bin, "server", "run")
		cmd.Env = append(os.Environ(), "EPS_SETTINGS="+r.dir)
		if r.name == a.name {
			cmd.Env = append(cmd.Env, "EPS_ADMIN_BIND="+adminAddr, "EPS_SERVICE_ENDPOINT="+service)
		}
		var logs bytes.Buffer
		cmd.Stderr = &logs
		must(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s exited with %v after SIGTERM\n%s", r.name, err, logs.String())
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("%s did not stop within 10 s of SIGTERM", r.name)
			}
		})
	}
	// Call b's _ping through a's node until both are up.
	var out []byte
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, bin, "call", "b.test._ping")
		cmd.Env = append(os.Environ(), "EPS_SETTINGS="+a.dir)
		var err error
		out, err = cmd.Output()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eps call b.test._ping never succeeded: %v %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ping struct{ Name string }
	if err := json.Unmarshal(out, &ping); err != nil || ping.Name != "b.test" {
		t.Fatalf("ping answer %s (%v), want name b.test", out, err)
	}
	// /debug/stats has the node's section with its service endpoint.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + adminAddr + "/debug/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats struct {
		EPS struct{ Service []struct{ URL string } } `json:"eps"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil || len(stats.EPS.Service) != 1 || stats.EPS.Service[0].URL != service {
		t.Errorf("/debug/stats: %+v (%v), want the eps section with the endpoint %s", stats, err, service)
	}
	// /metrics has the node's metrics next to the Go runtime's.
	resp, err = (&http.Client{Timeout: 5 * time.Second}).Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`epsproxy_eps_service_endpoint_up{endpoint="` + service + `"} 1`, "go_goroutines ", "process_open_fds "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %q:\n%s", want, body)
		}
	}
}

func TestBadSettingsExitWithOneLineNamingFileAndKey(t *testing.T) {
	bin := buildEPS(t)
	a, _ := writeNet(t)
	must(t, os.WriteFile(filepath.Join(a.dir, "002_typo.yml"), []byte("peer:\n  bnid: 1\n"), 0o644))
	cmd := exec.Command(bin, "server", "run")
	cmd.Env = append(os.Environ(), "EPS_SETTINGS="+a.dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		t.Fatal("eps started with a misspelt key")
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "002_typo.yml") || !strings.Contains(msg, `"peer.bnid"`) {
		t.Errorf("want one line naming 002_typo.yml and peer.bnid, got:\n%s", msg)
	}
	// A port in use is one clear line too.
	cmd = exec.Command(bin, "server", "run")
	must(t, os.Remove(filepath.Join(a.dir, "002_typo.yml")))
	cmd.Env = append(os.Environ(), "EPS_SETTINGS="+a.dir, "EPS_PEER_BIND="+a.local, "EPS_LOCAL_BIND="+a.local)
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("eps started with both listeners on one address")
	}
	if !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("port clash: %s", stderr.String())
	}
}

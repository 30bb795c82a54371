package testnet

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Redis is a real redis-server started by a test on a free loopback port, with its data in a
// temporary directory and no persistence unless asked (so a restart after Kill finds it empty,
// like a Redis that lost its data). The test fails if redis-server is not installed: CI installs
// it (Debian's redis-server).
type Redis struct {
	Addr string
	Dir  string
	args []string
	t    testing.TB
	cmd  *exec.Cmd
}

// StartRedis starts redis-server; extra are more config arguments (e.g. "--appendonly", "yes").
// It is stopped when the test ends.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (apt-get install -y redis-server): %v", err)
	}
	r := &Redis{Addr: FreeAddr(t), Dir: t.TempDir(), t: t}
	_, port, _ := net.SplitHostPort(r.Addr)
	r.args = append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", r.Dir, "--save", "",
		"--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"}, extra...)
	r.start(bin)
	t.Cleanup(r.Kill)
	return r
}

func (r *Redis) start(bin string) {
	r.t.Helper()
	cmd := exec.Command(bin, r.args...)
	cmd.Dir = r.Dir
	logf, err := os.Create(filepath.Join(r.Dir, fmt.Sprintf("redis-%d.log", time.Now().UnixNano())))
	if err != nil {
		r.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	r.cmd = cmd
	go func() { _ = cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.ping() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("redis-server on %s did not answer within 10 s (log in %s)", r.Addr, r.Dir)
}

// ping sends PING over a plain connection and reports whether +PONG came back.
func (r *Redis) ping() bool {
	c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Kill stops redis-server with SIGKILL (no save) and waits until its port refuses connections.
func (r *Redis) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	r.cmd = nil
	for range 200 {
		if !r.ping() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Restart starts redis-server again on the same port and directory.
func (r *Redis) Restart() {
	r.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.t.Fatal(err)
	}
	r.start(bin)
}

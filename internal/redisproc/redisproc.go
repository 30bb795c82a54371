// Package redisproc runs a real redis-server for the tests and the benchmarks: on a loopback
// address of the caller's choosing, with its files in a directory of the caller's, and no
// persistence unless asked (so a restart after Kill finds it empty, like a Redis that lost its
// data). It also reads the server's command counters. Nothing the products run imports it: the
// public proxy reaches Redis through go-redis (proxy/cluster).
package redisproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is one redis-server process.
type Server struct {
	Addr string
	Dir  string
	bin  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts redis-server on addr (host:port) with its files in dir; extra are more config
// arguments (e.g. "--appendonly", "yes"). It returns once the server answers PING.
func Start(addr, dir string, extra ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed (Debian: apt-get install -y redis-server): %w", err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: addr, Dir: dir, bin: bin}
	s.args = append([]string{"--port", port, "--bind", host, "--dir", dir, "--save", "",
		"--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"}, extra...)
	return s, s.start()
}

func (s *Server) start() error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := s.Command("PING"); err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on %s exited at start (log in %s)", s.Addr, s.Dir)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.Kill()
	return fmt.Errorf("redis-server on %s did not answer within 10 s (log in %s)", s.Addr, s.Dir)
}

// Pid is the running server's process id (0 after Kill).
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill stops the server with SIGKILL (no save) and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	s.cmd = nil
}

// Restart starts the server again with the same address, directory and arguments.
func (s *Server) Restart() error { return s.start() }

// Command sends one inline command and returns the reply's first line, or the whole bulk reply
// ("" for a nil one).
// It is for PING and INFO: no quoting, replies up to 1 MiB.
func (s *Server) Command(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(strings.Join(args, " ") + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReaderSize(c, 4096)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if n == -1 && err == nil {
			return "", nil // no such key
		}
		if err != nil || n < 0 || n > 1<<20 {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return strings.TrimPrefix(line, "+"), nil
}

// Calls returns how many commands the server has run since it started, by INFO commandstats.
func (s *Server) Calls() (int64, error) {
	info, err := s.Command("INFO", "commandstats")
	if err != nil {
		return 0, err
	}
	var total int64
	for line := range strings.Lines(info) {
		_, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("commandstats line %q", line)
		}
		total += v
	}
	return total, nil
}

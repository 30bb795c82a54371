package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"epsproxy/internal/chain"
	"epsproxy/internal/proc"
)

// soakEnv reads a bound from the environment (make soak raises them).
func soakEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// soakProcess is what the soak watches in one proxy process.
type soakProcess struct {
	Goroutines, FDs int
	RSS             int64 // bytes
}

// soakSample reads one proxy's goroutines and fds from its /debug/stats and its resident memory
// from /proc.
func soakSample(t *testing.T, c *chain.Chain, name string) soakProcess {
	t.Helper()
	st := adminStats(t, c, name)
	rss, err := proc.ReadRSS(c.Pid(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return soakProcess{Goroutines: st.Process.Goroutines, FDs: st.Process.FDs, RSS: rss}
}

// TestSoak pushes SOAK_CONNS connections (default 2,000; `make soak`: 200,000) through the chain
// at concurrency SOAK_CONC (100), one in ten of them bad (junk bytes, an unannounced name, plain
// HTTP, a hello abandoned half way). Every good request must succeed; afterwards both proxies'
// descriptors and goroutines must return to their baseline, and their memory must not keep
// growing between the middle and the end of the run.
func TestSoak(t *testing.T) {
	total := soakEnv("SOAK_CONNS", 2000)
	conc := soakEnv("SOAK_CONC", 100)
	limit := time.Duration(soakEnv("SOAK_MAX_SECONDS", 1800)) * time.Second

	c := newChain(t)
	watched := []string{chain.Public, chain.Private}
	withAdmin(t, c, watched...)
	c.Env[chain.Public] = []string{"PROXY_LOG_LEVEL=warn"}
	c.Env[chain.Private] = []string{"PROXY_LOG_LEVEL=warn"}
	c.Env[chain.PublicEPS] = []string{"EPS_LOG_LEVEL=warn"}
	c.Env[chain.PrivateEPS] = []string{"EPS_LOG_LEVEL=warn"}
	startAll(t, c)

	good := &tls.Config{RootCAs: c.Roots, ServerName: chain.Domain} // no session cache: every connection does a full handshake
	// Warm up, then take the baseline once the standby sockets are all there: each holds an fd,
	// and when the first announcement is retried the chain answers before they are up.
	for range 50 {
		if err := soakGood(c.Ports.PublicTLS, good); err != nil {
			t.Fatalf("warm-up request: %v", err)
		}
	}
	base := map[string]soakProcess{}
	for _, n := range watched {
		settledStats(t, c, n)
		base[n] = soakSample(t, c, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var (
		next, goodOK, goodFail, bad atomic.Int64
		firstErr                    atomic.Value
		mid                         sync.Map // process -> RSS at half way
		wg                          sync.WaitGroup
	)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				if i == int64(total/2) {
					for _, n := range watched {
						mid.Store(n, soakSample(t, c, n).RSS)
					}
				}
				if i%10 == 0 {
					soakBad(c.Ports.PublicTLS, int(i/10)%4)
					bad.Add(1)
					continue
				}
				if err := soakGood(c.Ports.PublicTLS, good); err != nil {
					goodFail.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				goodOK.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the soak hit its %v time bound after %d connections", limit, next.Load())
	}
	t.Logf("soak: %d good requests, %d bad clients, concurrency %d, %v (%.0f conns/s)", goodOK.Load(), bad.Load(), conc, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	if n := goodFail.Load(); n > 0 {
		t.Errorf("%d good requests failed; first: %v", n, firstErr.Load())
	}
	for _, n := range watched {
		b := base[n]
		var end soakProcess
		deadline := time.Now().Add(15 * time.Second)
		for {
			end = soakSample(t, c, n)
			if end.FDs <= b.FDs+4 && end.Goroutines <= b.Goroutines+4 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s did not return to its baseline: fds %d -> %d, goroutines %d -> %d", n, b.FDs, end.FDs, b.Goroutines, end.Goroutines)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		m, _ := mid.Load(n)
		midRSS, _ := m.(int64)
		t.Logf("%s: fds %d -> %d, goroutines %d -> %d, RSS %d KiB (baseline) -> %d KiB (half way) -> %d KiB (end)",
			n, b.FDs, end.FDs, b.Goroutines, end.Goroutines, b.RSS>>10, midRSS>>10, end.RSS>>10)
		// Flat: no more than 25% + 4 MiB growth over the second half of the run.
		if midRSS > 0 && end.RSS > midRSS+midRSS/4+4<<20 {
			t.Errorf("%s memory kept growing: %d KiB half way, %d KiB at the end", n, midRSS>>10, end.RSS>>10)
		}
	}
}

// soakGood is the README's request on a new connection, with a full handshake.
func soakGood(addr string, tc *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write([]byte("GET /jsonrpc HTTP/1.1\r\nHost: " + chain.Domain + "\r\nConnection: close\r\n\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil || n == len(buf) {
			break
		}
	}
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") || !strings.Contains(string(buf[:n]), `"success"`) {
		return fmt.Errorf("unexpected answer %.80q", buf[:n])
	}
	return nil
}

// soakBad is one misbehaving client of four kinds; it does not care how it ends, only that the
// chain survives it.
func soakBad(addr string, kind int) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	switch kind {
	case 0: // junk
		junk := make([]byte, 512)
		_, _ = rand.Read(junk)
		_, _ = c.Write(junk)
	case 1: // plain HTTP on the TLS port
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: " + chain.Domain + "\r\n\r\n"))
	case 2: // an unannounced name
		tc := tls.Client(c, &tls.Config{ServerName: "nobody.internal-server.local", InsecureSkipVerify: true})
		_ = tc.Handshake()
		return
	case 3: // half a hello, then gone
		_, _ = c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03})
		time.Sleep(20 * time.Millisecond)
		return
	}
	_, _ = c.Read(make([]byte, 64))
}

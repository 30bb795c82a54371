package engine_test

import (
	"crypto/tls"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"epsproxy/engine"
	"epsproxy/proxy/wire"
)

// A parked socket whose private side goes away (FIN, RST) or speaks is closed at once by the
// standby watcher, not at the next take or sweep: the counts drop before any client comes. The
// rigs here sweep only every longPhase, so nothing but the watcher can see it.

// watcherRig is a standbyRig whose sweep never runs in a test's time.
func watcherRig(t testing.TB) *rig {
	t.Helper()
	return standbyRig(t, func(c *engine.Config) { c.Tick = longPhase })
}

// wantGone waits until StandbyGone reaches gone and parked sockets number parked.
func wantGone(t testing.TB, r *rig, gone int64, parked int) {
	t.Helper()
	waitFor(t, "the dead parked sockets to be closed", func() bool {
		return r.eng.Stats().StandbyGone.Load() == gone && parkedNow(r) == parked
	})
}

// reset closes c with an RST instead of a FIN.
func reset(t testing.TB, c net.Conn) {
	t.Helper()
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestStandbyWatcherClosesADeadSocket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  func(testing.TB, net.Conn)
	}{
		{"FIN", func(_ testing.TB, c net.Conn) { c.Close() }},
		{"RST", reset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := watcherRig(t)
			dead := park(t, r, reserveOne(t, r, operator))
			live := park(t, r, reserveOne(t, r, operator))
			tc.end(t, dead)
			wantGone(t, r, 1, 1)

			if err := r.relayToBackend(live); err != nil {
				t.Fatal(err)
			}
			servedByStandby(t, r, "the live parked socket")
			noNotice(t, r)
			wantParked(t, r, 0)
			wantStats(t, r.eng, map[string]int64{"Accepted": 1, "Matched": 1, "Paired": 1})
			wantStandbyStats(t, r, 2, 1, 1)
		})
	}
}

func TestStandbyWatcherClosesASocketThatSpeaks(t *testing.T) {
	t.Parallel()
	r := watcherRig(t)
	pub := park(t, r, reserveOne(t, r, operator))
	start := time.Now()
	if _, err := pub.Write([]byte{0x16}); err != nil {
		t.Fatal(err)
	}
	if res := awaitClose(pub, start, patience); !res.closed || res.got != 0 {
		t.Errorf("parked socket that sent a byte: want a close without a byte, got %v", res)
	}
	wantGone(t, r, 1, 0)
	wantStandbyStats(t, r, 1, 0, 1)
}

// A socket parked right after another one's peer closed may get the dead one's descriptor number
// (the kernel hands out the lowest free one): the watcher's event for the dead one must not close
// it. Each round kills the parked socket and parks a fresh one at once; the fresh one must stay.
func TestStandbyWatcherSparesTheNextSocket(t *testing.T) {
	t.Parallel()
	const rounds = 20
	r := watcherRig(t)
	prev := park(t, r, reserveOne(t, r, operator))
	for i := range rounds {
		tok := reserveOne(t, r, operator)
		prev.Close()
		next := presentToken(t, r, tok[:])
		waitFor(t, "the dead socket closed and the next one parked", func() bool {
			s := r.eng.Stats()
			return s.StandbyGone.Load() == int64(i+1) && s.Parked.Load() == int64(i+2) && parkedNow(r) == 1
		})
		stillOpen(t, next, "the socket parked after another one died")
		prev = next
	}
	if err := r.relayToBackend(prev); err != nil {
		t.Fatal(err)
	}
	servedByStandby(t, r, "the last socket parked")
	noNotice(t, r)
	wantStandbyStats(t, r, rounds+1, 1, rounds)
}

// watchers counts the goroutines in the standby watcher.
func watchers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "engine.(*standby).watch(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// epolls counts the process's epoll instances and eventfds.
func epolls(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if l == "anon_inode:[eventpoll]" || l == "anon_inode:[eventfd]" {
			n++
		}
	}
	return n
}

// Stop with parked sockets, one of them dead, leaves no watcher, no epoll instance and no socket.
// Not parallel: it counts the process's goroutines and descriptors.
func TestStandbyStopLeavesNoWatcher(t *testing.T) {
	warm := newRig(t, nil)
	if err := goodClient(warm); err != nil {
		t.Fatal(err)
	}
	warm.close()
	waitFor(t, "the warm-up engine's watcher to end", func() bool { return watchers() == 0 })
	baseFD, baseEpoll := openFDs(t), epolls(t)

	r := watcherRig(t)
	waitFor(t, "one standby watcher with one engine running", func() bool { return watchers() == 1 })
	var peers []net.Conn
	for range 3 {
		peers = append(peers, park(t, r, reserveOne(t, r, operator)))
	}
	peers[0].Close()
	wantGone(t, r, 1, 2)
	r.close()
	for _, c := range peers[1:] {
		refusedAtOnce(t, c, "parked socket at Stop")
	}
	for _, c := range peers {
		c.Close()
	}
	var fds, eps, w int
	deadline := time.Now().Add(patience)
	for {
		fds, eps, w = openFDs(t), epolls(t), watchers()
		if (fds <= baseFD+fdSlack && eps <= baseEpoll && w == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if w != 0 {
		t.Errorf("%d standby watchers after Stop", w)
	}
	if eps > baseEpoll {
		t.Errorf("%d epoll instances and eventfds after Stop, %d before the engine", eps, baseEpoll)
	}
	if fds > baseFD+fdSlack {
		t.Errorf("%d descriptors open after Stop, %d before the engine", fds, baseFD)
	}
	if p, tok := r.eng.Standby(); p != 0 || tok != 0 {
		t.Errorf("Standby() = %d parked, %d tokens after Stop, want 0 and 0", p, tok)
	}
}

// A framed socket parked again after a client is watched by the relay loop that served it
// (relay.Hold), not by the watcher: its private side going away or speaking closes it at once
// all the same, with no sweep and no client to find it.
func TestStandbyReparkedSocketIsWatched(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  func(fd int) error
	}{
		{"FIN", unix.Close},
		{"RST", func(fd int) error {
			if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
				return err
			}
			return unix.Close(fd)
		}},
		{"speaks", func(fd int) error {
			defer unix.Close(fd)
			_, err := unix.Write(fd, []byte{0x16})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := watcherRig(t)
			toks, _, err := r.eng.Reserve(operator, 1, wire.SocketMode{Framed: true})
			if err != nil {
				t.Fatal(err)
			}
			priv := awaitFramed(t, r, park(t, r, toks[0]), true)
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: patience}, "tcp", r.cfg.PublicAddr, r.clientTC)
			if err != nil {
				t.Fatal(err)
			}
			if err := echo(c, []byte("the only client")); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
			var fd int
			select {
			case fd = <-priv.kept:
			case <-time.After(2 * patience):
				t.Fatal("the private side did not get the socket back")
			}
			if fd < 0 {
				t.Fatal("the private side's relay closed the framed socket")
			}
			wantCounter(t, "StandbyReused", r.eng.Stats().StandbyReused.Load, 1)
			wantParked(t, r, 1)
			if err := tc.end(fd); err != nil {
				t.Fatal(err)
			}
			wantGone(t, r, 1, 0)
		})
	}
}

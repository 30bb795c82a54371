package relay

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestFramedChainAbruptEnds: clients and servers that end the way load generators and browsers
// do (a download cut with a reset while the server streams, or with a FIN and then a reset, an
// upload that stops with a FIN or a reset, a server that resets mid-upload), over a few links carrying sessions in turn and at
// once. Every pair on both relays must end, and every link must come back to its keepers: a
// session that waits forever for the other side's end frame would hold its link, its pipes and
// its pair.
func TestFramedChainAbruptEnds(t *testing.T) {
	g := newRig(t)
	P, _ := testRelay(t, Config{})
	Q, _ := testRelay(t, Config{})

	// The backend: the first byte says what to do ('d' stream down until an error, 'u' read until
	// the end, 'r' read a little, then reset).
	go func() {
		for {
			c, err := g.back.AcceptTCP()
			if err != nil {
				return
			}
			go func(c *net.TCPConn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testTimeout))
				cmd := make([]byte, 1)
				if _, err := io.ReadFull(c, cmd); err != nil {
					return
				}
				switch cmd[0] {
				case 'd':
					buf := make([]byte, 64<<10)
					for {
						if _, err := c.Write(buf); err != nil {
							return
						}
					}
				case 'u':
					_, _ = io.Copy(io.Discard, c)
				case 'r':
					_, _ = io.CopyN(io.Discard, c, 100<<10)
					_ = c.SetLinger(0)
				case 'c':
					// Answers and closes at once, like an HTTPS server with Connection: close.
					_, _ = c.Write([]byte("bye"))
				}
			}(c)
		}
	}()

	// The backend gives up after testTimeout: a session still open after settle waits for an
	// end that only that deadline would bring.
	const links, rounds, settle = 4, 6, 5 * time.Second
	pubEnds := make(chan int, links)
	lost := make(chan string, links*rounds)
	pk := newKeeper(t, func(fd int) {
		if fd >= 0 {
			pubEnds <- fd
		} else {
			lost <- "public side"
		}
	}, true)
	var qAw keepingAwaiter
	qk := newKeeper(t, func(fd int) {
		if fd < 0 {
			lost <- "private side"
			return
		}
		if err := Q.AwaitFramed(fd, nil, testTimeout, qAw); err != nil {
			t.Errorf("Q: await the kept link: %v", err)
		}
	}, true)
	qAw = keepingAwaiter{newAwaiter(t, func(int, []byte) (int, any, error) {
		fd, err := connectNB(g.back.Addr())
		return fd, "session", err
	}), qk}
	for range links {
		privFD, pubConn := awaitedConn(t, g.front)
		pubFD, err := dupConn(pubConn)
		if err != nil {
			t.Fatal(err)
		}
		if err := Q.AwaitFramed(privFD, nil, testTimeout, qAw); err != nil {
			t.Fatal(err)
		}
		pubEnds <- pubFD
	}
	// Clients are made up front: awaitedConn accepts on the shared listener.
	type client struct {
		fd int
		c  *net.TCPConn
	}
	clients := make(chan client, links*rounds)
	for range links * rounds {
		fd, c := awaitedConn(t, g.front)
		clients <- client{fd, c}
	}
	close(clients)

	kinds := []string{"download, client resets", "download, client closes unread", "download, client FIN then resets",
		"upload, client FIN", "upload, client resets", "upload, server resets", "server closes, client sends its last bytes"}
	var wg sync.WaitGroup
	for w := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				cl, ok := <-clients
				if !ok {
					return
				}
				var link int
				select {
				case link = <-pubEnds:
				case <-time.After(settle):
					t.Errorf("worker %d: no link came back in %v", w, settle)
					return
				}
				kind := kinds[(w+i)%len(kinds)]
				cmd := map[byte]byte{'d': 'd', 'u': 'u'}[kind[0]]
				switch kind {
				case "upload, server resets":
					cmd = 'r'
				case "server closes, client sends its last bytes":
					cmd = 'c'
				}
				if err := P.AddFramed(cl.fd, link, nil, []byte{cmd}, kind, pk); err != nil {
					t.Errorf("%s: AddFramed: %v", kind, err)
					return
				}
				runAbrupt(t, kind, cl.c)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(settle)
	for P.Pairs()+Q.Pairs() > 0 || len(pubEnds) < links {
		if time.Now().After(deadline) {
			t.Fatalf("after every client left: %d pairs on the public relay, %d on the private one, %d of %d links back",
				P.Pairs(), Q.Pairs(), len(pubEnds), links)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case who := <-lost:
		t.Errorf("a link was closed by the %s instead of kept", who)
	default:
	}
}

// runAbrupt plays one client of TestFramedChainAbruptEnds and returns once it has left.
func runAbrupt(t *testing.T, kind string, c *net.TCPConn) {
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 64<<10)
	switch kind {
	case "download, client resets", "download, client closes unread", "download, client FIN then resets":
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
		switch kind {
		case "download, client resets":
			_ = c.SetLinger(0)
		case "download, client FIN then resets":
			// Its end frame goes first; the server streams on until the reset cuts it.
			_ = c.CloseWrite()
			time.Sleep(5 * time.Millisecond)
			_ = c.SetLinger(0)
		}
		_ = c.Close()
	case "upload, client FIN", "upload, client resets":
		for range 8 {
			if _, err := c.Write(buf); err != nil {
				t.Errorf("%s: %v", kind, err)
				break
			}
		}
		if kind == "upload, client resets" {
			_ = c.SetLinger(0)
			_ = c.Close()
			return
		}
		_ = c.CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("%s: after the FIN: %v", kind, err)
		}
		_ = c.Close()
	case "server closes, client sends its last bytes":
		// The server is gone when these arrive (the private side's write to it fails after its
		// end frame went out): the client still sees a clean end, and so does the next client
		// of the link.
		if got, err := io.ReadAll(c); err != nil || string(got) != "bye" {
			t.Errorf("%s: read %q, %v; want \"bye\" and a clean end", kind, got, err)
		}
		for range 4 {
			if _, err := c.Write([]byte("close_notify and more")); err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		_ = c.Close()
	case "upload, server resets":
		for {
			if _, err := c.Write(buf); err != nil {
				break // the reset came through
			}
		}
		_ = c.Close()
	default:
		panic(fmt.Sprint("unknown kind ", kind))
	}
}

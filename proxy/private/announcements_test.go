package private

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"epsproxy/bench/load"
	"epsproxy/epsclient"
	"epsproxy/proxy/wire"
)

// Relay loops route standby clients from the announcements' snapshot: a save of the
// announcements file that does not finish (a slow disk, an fsync that hangs) must not hold up a
// single client. The save is held open while clients are paired on standby sockets, and a name
// the held call adds is served already.
func TestStandbyClientsArePairedWhileASaveIsHeldOpen(t *testing.T) {
	internal, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer internal.Close()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	p := newProxy(t, Settings{InternalEndpoint: internal.Addr().String(),
		Announce: []Announcement{{Domain: "*.app.example", Proxy: "pub.test"}}}, t.TempDir())

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p.anns.write = func(path string, list []Announcement) error {
		once.Do(func() { close(entered) })
		<-release
		return saveStore(path, list)
	}
	added := make(chan error, 1)
	go func() {
		_, err := epsclient.Typed(p.announceConnection)(context.Background(), call(wire.AnnounceConnection, "op.test", []string{".late.example"},
			map[string]string{"domain": "new.late.example", "proxy": "pub.test"}))
		added <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the announcement's save never started")
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	// The internal server answers each connection with the name its hello asked for.
	go func() {
		for {
			c, err := internal.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				for _, name := range []string{"a.app.example", "b.app.example", "new.late.example"} {
					if bytes.Contains(buf[:n], []byte(name)) {
						_, _ = io.WriteString(c, "served "+name)
					}
				}
			}()
		}
	}()

	sp := newStandbyPool(p, "pub.test", "")
	defer sp.close()
	close(sp.done) // the pool's goroutine is not run: this test dials by hand
	for i, name := range []string{"a.app.example", "b.app.example", "new.late.example"} {
		var tok wire.Token
		tok[0] = byte(i + 1)
		if !sp.dial(ticket{tok: tok, endpoint: pub.Addr().String()}) {
			t.Fatalf("%s: standby dial failed", name)
		}
		c, err := pub.Accept()
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, wire.TokenSize)
		if _, err := io.ReadFull(c, got); err != nil || got[0] != byte(i+1) {
			t.Fatalf("%s: token %v %v", name, got, err)
		}
		hello, err := load.ClientHelloRecord(&tls.Config{ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		answer, err := io.ReadAll(c)
		c.Close()
		if string(answer) != "served "+name {
			t.Errorf("%s with the save held open: got %q (%v)", name, answer, err)
		}
	}

	close(release)
	if err := <-added; err != nil {
		t.Fatalf("announceConnection: %v", err)
	}
	b, err := os.ReadFile(p.anns.path)
	if err != nil || !strings.Contains(string(b), "new.late.example") {
		t.Errorf("the file after the save: %v %s", err, b)
	}
}

// Concurrent updates each save; whatever order the saves run in, the file ends with every name.
func TestConcurrentUpdatesLeaveTheNewestSetOnDisk(t *testing.T) {
	p := newProxy(t, Settings{InternalEndpoint: "127.0.0.1:8888"}, t.TempDir())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := string(rune('a'+i)) + ".late.example"
			if _, err := epsclient.Typed(p.announceConnection)(context.Background(), call(wire.AnnounceConnection, "op.test", []string{".late.example"},
				map[string]string{"domain": d, "proxy": "pub.test"})); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	stored, err := loadStore(p.anns.path)
	if err != nil || len(stored) != 20 {
		t.Errorf("stored %d announcements (%v), want 20", len(stored), err)
	}
}

package relay

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The throughput benchmarks move b.N MiB from clients to servers over loopback,
// split evenly over 1 or 8 streams, in three ways measured in the same run:
//
//	RelayThroughput: client -> relay (this package) -> server
//	DirectLoopback:  client -> server
//	IOCopy:          client -> two goroutines doing io.Copy (Go's own splice) -> server
//
// so MB/s can be compared as ratios. cpu-s/GiB is the whole process's CPU (the
// test's senders and receivers included) per GiB moved. Run them together, for
// example:
//
//	go test -run '^$' -bench 'Throughput|Loopback|IOCopy' -benchtime 2s ./engine/relay/

const benchChunk = 1 << 20

func BenchmarkRelayThroughput(b *testing.B) { benchStreams(b, "relay") }
func BenchmarkDirectLoopback(b *testing.B)  { benchStreams(b, "direct") }
func BenchmarkIOCopy(b *testing.B)          { benchStreams(b, "iocopy") }

func benchStreams(b *testing.B, mode string) {
	for _, streams := range []int{1, 8} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			benchThroughput(b, mode, streams, Config{}, false)
		})
	}
}

// BenchmarkRelayPipeSize shows the trade-off behind Config.PipeSize: each splice
// moves at most one pipe's worth, so bigger pipes mean fewer system calls per
// byte, at the price of more kernel memory per stalled direction.
func BenchmarkRelayPipeSize(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("size=%dK", size>>10), func(b *testing.B) {
			benchThroughput(b, "relay", 1, Config{PipeSize: size}, false)
		})
	}
}

// BenchmarkChainThroughput is the public and private proxies' data path: client -> relay P ->
// link -> relay Q -> server, one stream, each way, with the link plain (Add on both relays) or
// framed (AddFramed on both, the link the framed side), so that framing's cost is a ratio of two
// figures from one run.
func BenchmarkChainThroughput(b *testing.B) {
	for _, mode := range []string{"chain-plain", "chain-framed"} {
		for _, down := range []bool{false, true} {
			way := "up"
			if down {
				way = "down"
			}
			b.Run(mode+"/"+way, func(b *testing.B) { benchThroughput(b, mode, 1, Config{}, down) })
		}
	}
}

// benchChain builds client -> P -> link -> Q -> server; framed frames the link on both relays.
func benchChain(b *testing.B, g *rig, p, q *Relay, framed bool) (client, server *net.TCPConn) {
	client, server, a, link := g.rawFDs(b) // server here is the link's far end
	mid, err := dupConn(server)
	if err != nil {
		b.Fatal(err)
	}
	_, server2, _, back := g.rawFDs(b)
	if framed {
		err = p.AddFramed(a, link, nil, nil, "P", nil)
		if err == nil {
			err = q.AddFramed(back, mid, nil, nil, "Q", nil)
		}
	} else {
		err = p.Add(a, link, nil, nil, "P")
		if err == nil {
			err = q.Add(mid, back, nil, nil, "Q")
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	return client, server2
}

// benchThroughput moves b.N MiB over streams pipelines of mode, client to server, or server to
// client when down.
func benchThroughput(b *testing.B, mode string, streams int, cfg Config, down bool) {
	g := newRig(b)
	var r, q *Relay
	switch mode {
	case "relay":
		r, _ = testRelay(b, cfg)
	case "chain-plain", "chain-framed":
		r, _ = testRelay(b, cfg)
		q, _ = testRelay(b, cfg)
	}
	clients := make([]*net.TCPConn, streams)
	servers := make([]*net.TCPConn, streams)
	for i := range streams {
		switch mode {
		case "relay":
			clients[i], servers[i] = g.pipeline(b, r, nil, nil, nil)
		case "direct":
			// Only the back listener: client talks to server straight.
			c, err := net.DialTCP("tcp", nil, g.back.Addr().(*net.TCPAddr))
			if err != nil {
				b.Fatal(err)
			}
			s, err := g.back.AcceptTCP()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close(); _ = s.Close() })
			clients[i], servers[i] = c, s
		case "iocopy":
			var a, bc *net.TCPConn
			clients[i], a, bc, servers[i] = g.conns(b)
			go ioCopyHalf(bc, a)
			go ioCopyHalf(a, bc)
		case "chain-plain", "chain-framed":
			clients[i], servers[i] = benchChain(b, g, r, q, mode == "chain-framed")
		}
		if down {
			clients[i], servers[i] = servers[i], clients[i]
		}
	}
	total := int64(b.N) * benchChunk
	b.SetBytes(benchChunk)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	results := make(chan error, 2*streams)
	for i := range streams {
		share := total / int64(streams)
		if i == 0 {
			share += total % int64(streams)
		}
		go func() {
			buf := make([]byte, 256<<10)
			for left := share; left > 0; {
				n, err := clients[i].Write(buf[:min(left, int64(len(buf)))])
				left -= int64(n)
				if err != nil {
					results <- err
					return
				}
			}
			results <- clients[i].CloseWrite()
		}()
		go func() {
			buf := make([]byte, 256<<10)
			var got int64
			for {
				n, err := servers[i].Read(buf)
				got += int64(n)
				if err == io.EOF {
					break
				}
				if err != nil {
					results <- err
					return
				}
			}
			if got != share {
				results <- fmt.Errorf("server got %d bytes, want %d", got, share)
				return
			}
			results <- nil
		}()
	}
	for range 2 * streams {
		if err := <-results; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// CPU of the whole process (senders and receivers included), so the relay's
	// own share is the difference to DirectLoopback.
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/(float64(total)/(1<<30)), "cpu-s/GiB")
}

// cpuTime is the user plus system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ioCopyHalf is one direction of the classic goroutine relay.
func ioCopyHalf(dst, src *net.TCPConn) {
	_, _ = io.Copy(dst, src)
	_ = dst.CloseWrite()
	_ = src.CloseRead()
}

// BenchmarkIdlePairs reports the relay's heap per idle pair for 1,000 pairs
// (after GC), each of which has carried one byte so it is surely registered.
func BenchmarkIdlePairs(b *testing.B) {
	const pairs = 1000
	var heap float64
	for range b.N {
		b.StopTimer()
		g := newRig(b)
		r, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		type ends struct {
			client, server *net.TCPConn
			a, b           int
		}
		all := make([]ends, pairs)
		for i := range all {
			all[i].client, all[i].server, all[i].a, all[i].b = g.rawFDs(b)
		}
		var m0, m1 runtime.MemStats
		settleHeap(&m0)
		b.StartTimer()
		for _, e := range all {
			if err := r.Add(e.a, e.b, nil, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		buf := make([]byte, 1)
		for _, e := range all {
			if _, err := e.client.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(e.server, buf); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		settleHeap(&m1)
		heap += float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / pairs
		_ = r.Close()
		for _, e := range all {
			_ = e.client.Close()
			_ = e.server.Close()
		}
	}
	b.ReportMetric(heap/float64(b.N), "heap-B/pair")
}

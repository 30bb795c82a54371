// Command parkcost shows, with no gnet and no proxy, what a goroutine that waits in a blocking
// epoll_wait system call (as gnet's event loops do) costs a Go process that is woken every few
// tens of milliseconds, against one that parks in the runtime's poller. It prints the process's
// context switches and CPU time per wake-up. The cost is the runtime's sysmon thread: a P held
// in a system call for 10 ms while another P is idle is taken back, sysmon sleeps until the
// waiter returns, and then restarts at 20 µs ticks (internal/daemon.Governor works around it):
//
//	go run ./bench/cmd/parkcost -mode syscall -procs 3   # the public proxy's old sizing
//	go run ./bench/cmd/parkcost -mode syscall -procs 1   # no idle P while the waiter blocks
//	go run ./bench/cmd/parkcost -mode netpoll -procs 3   # parked in the runtime poller
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	mode := flag.String("mode", "syscall", "syscall: the waiter blocks in epoll_wait (gnet's way); netpoll: it parks in the runtime poller")
	procs := flag.Int("procs", 3, "GOMAXPROCS")
	n := flag.Int("n", 100, "wake-ups (at most 10,000)")
	gap := flag.Duration("gap", 45*time.Millisecond, "time between wake-ups (between 1 ms and 1 s)")
	flag.Parse()
	if *n < 1 || *n > 10000 || *gap < time.Millisecond || *gap > time.Second {
		fmt.Fprintln(os.Stderr, "parkcost: -n must be 1 to 10,000 and -gap 1ms to 1s")
		os.Exit(2)
	}
	if err := run(*mode, *procs, *n, *gap); err != nil {
		fmt.Fprintln(os.Stderr, "parkcost:", err)
		os.Exit(1)
	}
}

func run(mode string, procs, n int, gap time.Duration) error {
	runtime.GOMAXPROCS(procs)
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return err
	}
	woke := make(chan struct{})
	switch mode {
	case "syscall":
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
			return err
		}
		go func() {
			ev := make([]unix.EpollEvent, 1)
			buf := make([]byte, 8)
			for {
				if k, _ := unix.EpollWait(ep, ev, -1); k > 0 { // Syscall6: the P stays with the waiter
					_, _ = unix.Read(efd, buf)
					woke <- struct{}{}
				}
			}
		}()
	case "netpoll":
		f := os.NewFile(uintptr(efd), "eventfd")
		go func() {
			buf := make([]byte, 8)
			for {
				if _, err := f.Read(buf); err == nil {
					woke <- struct{}{}
				}
			}
		}()
	default:
		return fmt.Errorf("-mode %q: want syscall or netpoll", mode)
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	time.Sleep(100 * time.Millisecond)
	sw0, cpu0 := switches(), cpuTime()
	for range n {
		time.Sleep(gap)
		if _, err := unix.Write(efd, one); err != nil {
			return err
		}
		<-woke
	}
	sw, cpu := switches()-sw0, cpuTime()-cpu0
	fmt.Printf("mode %-7s GOMAXPROCS %d: %d wake-ups %v apart: %.1f context switches and %.0f µs of CPU per wake-up\n",
		mode, procs, n, gap, float64(sw)/float64(n), float64(cpu.Microseconds())/float64(n))
	return nil
}

// switches sums the voluntary and involuntary context switches of every thread of the process.
func switches() int {
	paths, _ := filepath.Glob("/proc/self/task/*/status")
	total := 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				total += n
			}
		}
		f.Close()
	}
	return total
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

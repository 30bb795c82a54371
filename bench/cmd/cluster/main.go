// Command cluster runs the scale-out benchmark (bench/cluster): Redis and the cluster chain of
// make demo-cluster on free loopback ports, new TLS connections through one public proxy
// instance and through both, interleaved; it prints a markdown table of the medians.
//
//	go run ./bench/cmd/cluster -reps 5 -seconds 8 -c 24   # make bench-cluster
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"epsproxy/bench/cluster"
	"epsproxy/internal/chain"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reps := fs.Int("reps", 5, "repetitions, each through one instance and through both (1 to 50)")
	secs := fs.Float64("seconds", 8, "length of each phase (1 to 120)")
	conc := fs.Int("c", 24, "client connections at a time, in all (2 to 500)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *reps < 1 || *reps > 50 || *secs < 1 || *secs > 120 || *conc < 2 || *conc > 500 {
		fmt.Fprintln(stderr, "cluster: -reps 1..50, -seconds 1..120, -c 2..500")
		return 2
	}
	root, err := chain.RepoRoot()
	if err != nil {
		fmt.Fprintln(stderr, "cluster:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	phases, err := cluster.Run(ctx, cluster.Options{Root: root, Reps: *reps, Duration: time.Duration(*secs * float64(time.Second)), Concurrency: *conc, Log: stderr})
	if err != nil {
		fmt.Fprintln(stderr, "cluster:", err)
		return 1
	}
	fmt.Fprint(stdout, cluster.Table(phases))
	return 0
}

// Command bench runs the benchmark harness: it builds and starts everything on loopback (the
// internal server and the five processes of the chain with generated dev settings on free
// ports, the bulk backends, HAProxy where installed), runs the scenarios with the chain, direct
// and HAProxy interleaved, stops all it started, and prints the report.
//
//	go run ./bench/cmd/bench                 # the full run (make bench)
//	go run ./bench/cmd/bench -quick          # under two minutes (make bench-quick)
//	go run ./bench/cmd/bench -profile cpu    # also profile the public proxy's connection scenario
//	go run ./bench/cmd/bench -syscalls       # also count each proxy's system calls per connection
//	go run ./bench/cmd/bench -render bench/out/results.json   # redraw the report, measure nothing
//
// Run it from inside the repository. Output: the report on stdout, progress on stderr, and
// results.json, table.md, chart.png and the processes' logs in -out.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"epsproxy/bench/harness"
	"epsproxy/internal/chain"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "the short run: 2 repetitions, shorter phases, 2,000 idle connections (under two minutes)")
	scenarios := fs.String("scenarios", strings.Join(harness.AllScenarios, ","), "comma-separated scenarios to run")
	reps := fs.Int("reps", 0, "repetitions per scenario (default 5, or 2 with -quick)")
	out := fs.String("out", "bench/out", "output directory")
	profile := fs.String("profile", "", "write this profile of a proxy during the connection scenario: "+strings.Join(harness.ProfileKinds, ", "))
	profileProc := fs.String("profile-proc", chain.Public, "the proxy -profile applies to: "+chain.Public+" or "+chain.Private)
	syscalls := fs.Bool("syscalls", false, "count each proxy's system calls per new connection with perf stat, in an untimed phase after the connection scenario")
	haproxy := fs.Bool("haproxy", true, "compare with HAProxy (installed with apt-get when missing and running as root)")
	render := fs.String("render", "", "measure nothing: re-render the report of this results.json into -out")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var list []string
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if *render != "" {
		if err := harness.Render(harness.Options{Out: *out, Stdout: stdout}, *render); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := harness.Run(ctx, harness.Options{
		Quick: *quick, Scenarios: list, Reps: *reps, Out: *out, Profile: *profile, ProfileProc: *profileProc, NoHAProxy: !*haproxy,
		Syscalls: *syscalls, Stdout: stdout, Log: stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

package harness

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"epsproxy/bench/report"
	"epsproxy/internal/chain"
	"epsproxy/internal/proc"
)

// Run runs the benchmark described by o and writes the report into o.Out. It returns the
// results, complete or partial, and an error when the setup or a scenario failed (a missed
// target is not an error). Everything it started is stopped before it returns. Not safe to run
// twice at once in one process: it changes the process's environment (PROFILE) and fd limit.
func Run(ctx context.Context, o Options) (*Results, error) {
	plan, err := planFor(o)
	if err != nil {
		return nil, err
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, plan.Deadline)
	defer cancel()
	// `make bench PROFILE=cpu` exports PROFILE to this process: left in the environment, every
	// child would profile itself. Only the profiled proxy gets it, and only when asked.
	os.Unsetenv("PROFILE")
	os.Unsetenv("PROFILE_DIR")
	res := &Results{Mode: plan.Mode, Plan: plan, Command: strings.Join(append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...), " "), Started: time.Now(),
		Machine: proc.Describe(), LoadAvgStart: proc.LoadAvg()}
	e, err := setup(ctx, o, plan, res)
	if err != nil {
		if e != nil {
			err = fmt.Errorf("%w\n%s", err, e.logTails())
			e.teardown()
		}
		return res, err
	}
	// Quiet first: it measures the chain at rest, before any load has grown heaps or left the
	// runtimes work to do. Then idle: it measures memory growth, clearest on fresh processes.
	steps := []struct {
		name string
		run  func(context.Context) error
	}{{ScenarioQuiet, e.runQuiet}, {ScenarioIdle, e.runIdle}, {ScenarioConns, e.runConns}, {ScenarioBulk, e.runBulk}, {ScenarioSeed, e.runSeed}}
	var runErr error
	for _, s := range steps {
		if !o.wants(s.name) {
			continue
		}
		e.logf("scenario %s", s.name)
		if err := s.run(ctx); err != nil {
			runErr = fmt.Errorf("scenario %s: %w\n%s", s.name, err, e.logTails())
			break
		}
	}
	res.LoadAvgEnd = proc.LoadAvg()
	e.teardown()
	res.Finished = time.Now()
	summarize(res)
	if err := write(o, res); err != nil {
		runErr = errors.Join(runErr, err)
	}
	return res, runErr
}

// Render re-reads a results.json written by Run and writes the report again (table.md,
// chart.png and the markdown on o.Stdout) into o.Out, with the summary recomputed from the raw
// phases: for a change of presentation without measuring again. It starts nothing; calls with
// different output directories may overlap.
func Render(o Options, resultsFile string) error {
	b, err := os.ReadFile(resultsFile)
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", resultsFile, err)
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	summarize(&res)
	return write(o, &res)
}

// write saves results.json, table.md and chart.png and prints the report.
func write(o Options, res *Results) error {
	md := Markdown(res)
	fmt.Fprintln(o.Stdout, md)
	var errs []error
	js, err := json.MarshalIndent(res, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(o.Out, "results.json"), js, 0o644)
	}
	errs = append(errs, err)
	errs = append(errs, os.WriteFile(filepath.Join(o.Out, "table.md"), []byte(md), 0o644))
	files := []string{"results.json", "table.md"}
	if s := chartSeries(res); len(s) > 0 {
		errs = append(errs, report.Chart(filepath.Join(o.Out, "chart.png"), "TLS passthrough", s))
		files = append(files, "chart.png")
	}
	fmt.Fprintf(o.Stdout, "Wrote %s in %s.\n", strings.Join(files, ", "), o.Out)
	if res.Profile != "" {
		fmt.Fprintf(o.Stdout, "Profile of the %s during the connection scenario:\n  %s\n", cmp.Or(o.ProfileProc, chain.Public), res.Profile)
	}
	return errors.Join(errs...)
}

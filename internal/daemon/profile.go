package daemon

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pkg/profile"
)

// ProfileFlags are the --profile and --profile-dir flags every long-running command takes. The
// environment variables PROFILE and PROFILE_DIR give the defaults, so a harness can profile a
// process without changing its command line.
type ProfileFlags struct {
	Kind string
	Dir  string
}

// Register adds the flags to fs.
func (p *ProfileFlags) Register(fs *flag.FlagSet) {
	dir := os.Getenv("PROFILE_DIR")
	if dir == "" {
		dir = "profiles"
	}
	fs.StringVar(&p.Kind, "profile", os.Getenv("PROFILE"), "write a profile on shutdown: cpu, mem, block, mutex or goroutine")
	fs.StringVar(&p.Dir, "profile-dir", dir, "directory for the profile file")
}

// Start begins profiling if a kind was asked for; the returned stop writes the profile (call it
// on shutdown). Open the result with `go tool pprof <binary> <dir>/<kind>.pprof`.
func (p *ProfileFlags) Start() (stop func(), err error) {
	var mode func(*profile.Profile)
	switch p.Kind {
	case "":
		return func() {}, nil
	case "cpu":
		mode = profile.CPUProfile
	case "mem":
		mode = profile.MemProfile
	case "block":
		mode = profile.BlockProfile
	case "mutex":
		mode = profile.MutexProfile
	case "goroutine":
		mode = profile.GoroutineProfile
	default:
		return nil, fmt.Errorf("--profile %q: want cpu, mem, block, mutex or goroutine", p.Kind)
	}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("--profile-dir: %w", err)
	}
	prof := profile.Start(mode, profile.ProfilePath(p.Dir), profile.NoShutdownHook, profile.Quiet)
	return prof.Stop, nil
}

// ParseProfileFlags parses a run command's arguments, which are only the profile flags. On a
// bad argument it prints usage to stderr and returns false.
func ParseProfileFlags(name string, args []string, stderr io.Writer, usage string) (*ProfileFlags, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf ProfileFlags
	pf.Register(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, usage)
		return nil, false
	}
	return &pf, true
}

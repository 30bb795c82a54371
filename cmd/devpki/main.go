// Command devpki writes the development PKI: a root CA, one certificate per
// operator and one for the example internal server, for the mutual TLS of
// the EPS signalling network. Present files are kept, so it is safe to run
// from make on every build:
//
//	devpki -dir settings/dev/certs
//	devpki -dir settings/dev/certs -operators public-proxy-1.ga,private-proxy-1.ga -days 30
//	devpki -dir settings/dev/certs -force
//
// It prints one line per file written. The certificates and unencrypted keys
// are for development only. All logic lives in internal/pki; this command must
// not hold any.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"epsproxy/internal/pki"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status so tests can
// drive the command in-process.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devpki", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "settings/dev/certs", "directory for root.crt/root.key and <name>.crt/<name>.key")
	force := fs.Bool("force", false, "re-issue the root and every certificate even if present")
	operators := fs.String("operators", strings.Join(pki.DefaultOperators(), ","), "comma-separated operator names, one certificate each")
	days := fs.Int("days", int(pki.DefaultValidity/(24*time.Hour)), "validity of newly issued certificates, in days")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: devpki [flags]")
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "devpki: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devpki: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	maxDays := int(pki.MaxValidity / (24 * time.Hour))
	if *days < 1 || *days > maxDays {
		fmt.Fprintf(stderr, "devpki: -days %d is outside 1..%d\n", *days, maxDays)
		return 2
	}

	names := strings.Split(*operators, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	layout := pki.DevLayout(*dir, names)
	layout.ValidFor = time.Duration(*days) * 24 * time.Hour
	layout.Force = *force

	written, err := layout.Write()
	for _, path := range written {
		fmt.Fprintf(stdout, "wrote %s\n", path)
	}
	if err != nil {
		fmt.Fprintf(stderr, "devpki: %v\n", err)
		return 1
	}
	return 0
}

package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"epsproxy/internal/chain"
)

// `proxy check` and `eps check` validate a process's settings as its run command would, without
// opening a socket: the dev roles pass with exit 0 and one line; a broken file fails with exit 1
// and one line naming the file, the key and the problem.
func TestCheckCommands(t *testing.T) {
	t.Parallel()
	c := newChain(t) // a settings copy with a PKI; nothing runs
	for _, tc := range []struct {
		process, role, bad, key string
	}{
		{chain.Public, "public-proxy-1", "public: {max_pairs: -5}\n", `"public.max_pairs"`},
		{chain.Private, "private-proxy-1", "private: {runtime_targets: [nonsense]}\n", `"private.runtime_targets[0]"`},
		{chain.PublicEPS, "public-proxy-eps-1", "admin: {bind: \"0.0.0.0:1\"}\n", `"admin.bind"`},
	} {
		run := func() (int, string, string) {
			cmd, err := c.Command(tc.process)
			if err != nil {
				t.Fatal(err)
			}
			cmd.Args = []string{cmd.Args[0], "check"}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			code := 0
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return code, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String())
		}
		code, out, errOut := run()
		if code != 0 || !strings.Contains(out, "valid") || strings.Count(out, "\n") != 0 || errOut != "" {
			t.Errorf("%s check of the dev settings: exit %d, stdout %q, stderr %q", tc.process, code, out, errOut)
		}
		path := filepath.Join(c.Dir, "settings", "dev", "roles", tc.role, badSettingsFile)
		if err := c.WriteOverlay("roles/"+tc.role, badSettingsFile, tc.bad); err != nil {
			t.Fatal(err)
		}
		code, _, errOut = run()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if code != 1 || strings.Count(errOut, "\n") != 0 || !strings.Contains(errOut, badSettingsFile) || !strings.Contains(errOut, tc.key) {
			t.Errorf("%s check of a broken file: exit %d, stderr %q; want 1 and one line naming %s and %s", tc.process, code, errOut, badSettingsFile, tc.key)
		}
	}
}

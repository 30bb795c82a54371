package chain

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"epsproxy/internal/testnet"
)

// adminBind is the admin.bind the role's files in dir leave in force: the last file, in name
// order, that sets it ("", false when none does).
func adminBind(t *testing.T, dir string) (string, bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	bind, set := "", false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Admin *struct {
				Bind *string `yaml:"bind"`
			} `yaml:"admin"`
		}
		if err := yaml.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if s.Admin != nil && s.Admin.Bind != nil {
			bind, set = *s.Admin.Bind, true
		}
	}
	return bind, set
}

// Chains run side by side from copies of the dev roles, which bind fixed admin ports: in a
// chain's copy every role's admin listener is off, and a process EnableAdmin names gets a free
// address through its environment, which wins over the files.
func TestDevAdminPortsAreNeverBound(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(root, t.TempDir(), t.TempDir(), testnet.Addr)
	if err != nil {
		t.Fatal(err)
	}
	roles, err := os.ReadDir(filepath.Join(root, "settings", "dev", "roles"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if bind, _ := adminBind(t, filepath.Join(root, "settings", "dev", "roles", r.Name())); !strings.HasPrefix(bind, "127.0.0.1:91") {
			t.Errorf("the repository's %s binds its admin listener at %q, want a fixed dev port 91xx", r.Name(), bind)
		}
		if bind, set := adminBind(t, filepath.Join(c.Dir, "settings", "dev", "roles", r.Name())); !set || bind != "" {
			t.Errorf("the chain's %s leaves its admin listener at %q (set: %v), want it off", r.Name(), bind, set)
		}
	}
	if err := c.EnableAdmin(Public); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{Public: "PROXY_ADMIN_BIND=" + c.AdminAddr(Public), Private: ""} {
		cmd, err := c.Command(name)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, e := range cmd.Env {
			if strings.HasPrefix(e, "PROXY_ADMIN_BIND=") {
				got = e
			}
		}
		if got != want {
			t.Errorf("%s's environment sets %q, want %q", name, got, want)
		}
	}
}

package directory_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"epsproxy/eps/directory"
)

const dirYAML = `
operators:
  pub.test:
    groups: [publics]
    node: {address: "127.0.0.1:1"}
    services:
      - name: proxy
        groups: [admins]
        methods:
          - {name: announce, groups: [privates]}
          - {name: list}
          - {name: open, groups: ["*"]}
  priv.test:
    groups: [privates]
    settings:
      - {service: proxy, operator: pub.test, settings: {allowed_domains: [".a.example"]}}
      - {service: proxy, settings: {allowed_domains: [".fallback.example"]}}
  admin.test:
    groups: [admins]
`

func load(t *testing.T, files map[string]string) (*directory.Directory, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return directory.Load([]string{dir})
}

func TestPermissions(t *testing.T) {
	d, err := load(t, map[string]string{"001.yml": dirYAML})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		caller, callee, method string
		want                   error
	}{
		{"priv.test", "pub.test", "announce", nil},
		{"priv.test", "pub.test", "list", directory.ErrNotAllowed},
		{"admin.test", "pub.test", "list", nil}, // service-wide group
		{"admin.test", "pub.test", "announce", nil},
		{"priv.test", "pub.test", "open", nil}, // "*" admits everyone
		{"priv.test", "pub.test", "missing", directory.ErrNoSuchMethod},
		{"nobody.test", "pub.test", "announce", directory.ErrUnknownOperator},
		{"priv.test", "nobody.test", "announce", directory.ErrUnknownOperator},
	}
	for _, c := range cases {
		err := d.CanCall(c.caller, c.callee, c.method)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s -> %s.%s: %v, want %v", c.caller, c.callee, c.method, err, c.want)
		}
	}
}

func TestSettingsForPicksTheFirstMatchingGrant(t *testing.T) {
	d, err := load(t, map[string]string{"001.yml": dirYAML})
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		AllowedDomains []string `json:"allowed_domains"`
	}
	e := d.Entry("priv.test")
	if ok, err := e.SettingsFor("proxy", "pub.test", &g); !ok || err != nil || strings.Join(g.AllowedDomains, ",") != ".a.example" {
		t.Errorf("grant for pub.test: %v %v %v", ok, err, g.AllowedDomains)
	}
	if ok, _ := e.SettingsFor("proxy", "admin.test", &g); !ok || strings.Join(g.AllowedDomains, ",") != ".fallback.example" {
		t.Errorf("operator-less grant: %v %v", ok, g.AllowedDomains)
	}
	if ok, _ := d.Entry("admin.test").SettingsFor("proxy", "pub.test", &g); ok {
		t.Errorf("admin.test has no grants but SettingsFor found one")
	}
}

func TestInvalidDirectoriesNameTheKey(t *testing.T) {
	cases := map[string]string{
		"operators:\n  Bad Name: {groups: [x]}\n":                                          `"operators.Bad Name"`,
		"operators:\n  a.test: {certificates: [abc]}\n":                                    `"operators.a.test.certificates[0]"`,
		"operators:\n  a.test: {services: [{name: s, methods: [{name: m}, {name: m}]}]}\n": "offered twice",
		"operators:\n  a.test: {services: [{name: s, methods: [{name: a.b}]}]}\n":          "without dots",
		"operators:\n  a.test: {settings: [{operator: ghost.test}]}\n":                     "unknown operator",
		"operators:\n  a.test: {grups: [x]}\n":                                             "unknown key",
	}
	for body, want := range cases {
		_, err := load(t, map[string]string{"001.yml": body})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want mention of %s", body, err, want)
		}
	}
}

func TestLaterFilesAddToEntries(t *testing.T) {
	pin := strings.Repeat("0a", 32)
	d, err := load(t, map[string]string{"001.yml": dirYAML, "002_pins.yml": "operators:\n  pub.test:\n    certificates: [\"" + strings.ToUpper(pin) + "\"]\n"})
	if err != nil {
		t.Fatal(err)
	}
	e := d.Entry("pub.test")
	if e.Node.Address != "127.0.0.1:1" || len(e.Services) != 1 {
		t.Errorf("the pin file replaced the entry instead of adding to it: %+v", e)
	}
	if len(e.Certificates) != 1 || e.Certificates[0] != pin {
		t.Errorf("pins: %v, want the lower-cased %s", e.Certificates, pin)
	}
}

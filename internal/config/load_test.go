package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Bind    string   `yaml:"bind" env:"BIND"`
	Timeout Duration `yaml:"timeout"`
	Cert    Path     `yaml:"cert"`
}

type entry struct {
	A string `yaml:"a"`
	B string `yaml:"b"`
}

type sample struct {
	Ops   map[string]*entry `yaml:"ops"`
	Name  string            `yaml:"name"`
	Port  int               `yaml:"port"`
	Tags  []string          `yaml:"tags"`
	Inner inner             `yaml:"inner"`
	Extra map[string]string `yaml:"extra"`
}

func (s *sample) Validate() error {
	if s.Name == "forbidden" {
		return Errorf("name", "must not be %q", s.Name)
	}
	if s.Inner.Bind == "" {
		return Errorf("inner.bind", "missing")
	}
	return nil
}

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMergeInNameOrderAndResolvePaths(t *testing.T) {
	root := t.TempDir()
	role := filepath.Join(root, "roles", "a")
	write(t, role, "002_over.yml", "port: 2\ntags: [x]\ninner:\n  timeout: 1.5\nextra: {b: two}\nops: {x: {b: bee}}\n")
	write(t, role, "001_base.yml", "name: base\nport: 1\ntags: [a, b]\ninner:\n  bind: 127.0.0.1:1\n  timeout: 5s\n  cert: ../../certs/a.crt\nextra: {a: one}\nops: {x: {a: ay}}\n")
	write(t, role, "notes.txt", "ignored: true\n")
	var s sample
	if err := LoadPaths([]string{role}, "", &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "base" || s.Port != 2 {
		t.Errorf("scalars: got name %q port %d, want base 2", s.Name, s.Port)
	}
	if strings.Join(s.Tags, ",") != "x" {
		t.Errorf("lists are replaced by later files: got %v", s.Tags)
	}
	if s.Inner.Bind != "127.0.0.1:1" || s.Inner.Timeout.D() != 1500*time.Millisecond {
		t.Errorf("nested merge: got %+v", s.Inner)
	}
	if want := filepath.Join(root, "certs", "a.crt"); string(s.Inner.Cert) != want {
		t.Errorf("path resolved against the file's directory: got %s want %s", s.Inner.Cert, want)
	}
	if x := s.Ops["x"]; x == nil || x.A != "ay" || x.B != "bee" {
		t.Errorf("map values merge key by key too: got %+v", x)
	}
	if s.Extra["a"] != "one" || s.Extra["b"] != "two" {
		t.Errorf("maps merge key by key: got %v", s.Extra)
	}
}

func TestErrorsNameFileAndKey(t *testing.T) {
	cases := []struct {
		body string
		want []string
	}{
		{"name: x\ninner:\n  bnid: 1\n", []string{"bad.yml:3", `"inner.bnid"`, "unknown key", "bind"}},
		{"port: eighty\n", []string{"bad.yml:1", `"port"`, "whole number"}},
		{"inner:\n  timeout: soon\n", []string{`"inner.timeout"`, "duration"}},
		{"tags: one\n", []string{`"tags"`, "want a list"}},
		{"inner: [1]\n", []string{`"inner"`, "want a mapping"}},
		{"name: a\nname: b\n", []string{`"name"`}},
		{"name: [unclosed\n", []string{"bad.yml"}},
	}
	for _, c := range cases {
		dir := t.TempDir()
		f := write(t, dir, "bad.yml", c.body)
		var s sample
		err := LoadPaths([]string{f}, "", &s)
		if err == nil {
			t.Errorf("%q: no error", c.body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %s", c.body, err, w)
			}
		}
	}
}

func TestMissingPathsAreErrors(t *testing.T) {
	var s sample
	err := LoadPaths([]string{filepath.Join(t.TempDir(), "nope")}, "", &s)
	if err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing path: got %v", err)
	}
	empty := t.TempDir()
	if err := LoadPaths([]string{empty}, "", &s); err == nil || !strings.Contains(err.Error(), "no *.yml") {
		t.Errorf("empty directory: got %v", err)
	}
	t.Setenv("TEST_SETTINGS", "")
	if err := Load("TEST_SETTINGS", "", &s); err == nil || !strings.Contains(err.Error(), "TEST_SETTINGS is not set") {
		t.Errorf("unset variable: got %v", err)
	}
}

func TestValidateErrorNamesTheFileThatSetTheKey(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "001.yml", "inner: {bind: 'x:1'}\n")
	write(t, dir, "002.yml", "name: forbidden\n")
	var s sample
	err := LoadPaths([]string{dir}, "", &s)
	if err == nil || !strings.Contains(err.Error(), "002.yml") || !strings.Contains(err.Error(), `"name"`) {
		t.Fatalf("got %v, want it to name 002.yml and key name", err)
	}
	dir2 := t.TempDir()
	write(t, dir2, "001.yml", "name: ok\n")
	var fresh sample
	err = LoadPaths([]string{dir2}, "", &fresh)
	if err == nil || !strings.Contains(err.Error(), `"inner.bind"`) || !strings.Contains(err.Error(), "not set in any") {
		t.Fatalf("missing key: got %v", err)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "001.yml", "inner: {bind: '127.0.0.1:1'}\n")
	t.Setenv("TESTX_BIND", "127.0.0.1:0")
	var s sample
	if err := LoadPaths([]string{dir}, "TESTX_", &s); err != nil {
		t.Fatal(err)
	}
	if s.Inner.Bind != "127.0.0.1:0" {
		t.Errorf("override not applied: %q", s.Inner.Bind)
	}
}

// shared is a block two settings types inline, as the proxies share their relay settings.
type Shared struct {
	Idle Duration `yaml:"idle"`
	Bind string   `yaml:"shared_bind" env:"SHARED_BIND"`
}

type withInline struct {
	Name   string `yaml:"name"`
	Shared `yaml:",inline"`
	Block  struct {
		Shared `yaml:",inline"`
		Own    int `yaml:"own"`
	} `yaml:"block"`
}

func TestInlineKeysBelongToTheEnclosingMapping(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "a.yml", "name: n\nidle: 2s\nblock: {idle: 3s, own: 1}\n")
	t.Setenv("T_SHARED_BIND", "127.0.0.1:9")
	var s withInline
	if err := LoadPaths([]string{f}, "T_", &s); err != nil {
		t.Fatal(err)
	}
	if s.Idle.D() != 2*time.Second || s.Block.Idle.D() != 3*time.Second || s.Block.Own != 1 {
		t.Errorf("inline fields: top idle %v, block idle %v, own %d", s.Idle.D(), s.Block.Idle.D(), s.Block.Own)
	}
	if s.Bind != "127.0.0.1:9" || s.Block.Bind != "127.0.0.1:9" {
		t.Errorf("environment override of an inline field: %q, %q", s.Bind, s.Block.Bind)
	}
	// An unknown key next to inline ones is still named, with the keys it could have been.
	bad := write(t, dir, "b.yml", "block: {idel: 3s}\n")
	err := LoadPaths([]string{bad}, "", &s)
	if err == nil || !strings.Contains(err.Error(), `"block.idel"`) || !strings.Contains(err.Error(), "idle") {
		t.Errorf("misspelt inline key: %v", err)
	}
}

// role is a block a settings type holds by pointer: present only when a file sets it, as the
// proxy's public and private blocks.
type role struct {
	Bind string `yaml:"bind" env:"ROLE_BIND"`
}

func TestEnvironmentOverridesReachBlocksHeldByPointer(t *testing.T) {
	type withRole struct {
		Role  *role `yaml:"role"`
		Other *role `yaml:"other"`
	}
	dir := t.TempDir()
	write(t, dir, "001.yml", "role: {bind: '127.0.0.1:1'}\n")
	t.Setenv("P_ROLE_BIND", "127.0.0.1:2")
	var s withRole
	if err := LoadPaths([]string{dir}, "P_", &s); err != nil {
		t.Fatal(err)
	}
	if s.Role == nil || s.Role.Bind != "127.0.0.1:2" {
		t.Errorf("override of a block held by pointer not applied: %+v", s.Role)
	}
	if s.Other != nil {
		t.Errorf("a block no file set was created by the environment: %+v", s.Other)
	}
}

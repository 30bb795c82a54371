package directory

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"epsproxy/internal/config"
)

// Everyone in a permission list admits every operator of the directory.
const Everyone = "*"

// File is the on-disk form of the directory.
type File struct {
	Operators map[string]*Entry `yaml:"operators"`
}

// Entry describes one operator. It is also sent, as JSON, to the services an operator calls.
type Entry struct {
	Name   string   `yaml:"-" json:"name"`
	Groups []string `yaml:"groups" json:"groups"`
	// Node is where the operator's EPS node accepts calls from other nodes.
	Node Node `yaml:"node" json:"node"`
	// Certificates optionally pins the operator's certificates: lowercase hex SHA-256 of the leaf
	// DER. When empty, any certificate for the name from the network's CA is accepted.
	Certificates []string  `yaml:"certificates" json:"certificates,omitempty"`
	Services     []Service `yaml:"services" json:"services,omitempty"`
	Settings     []Setting `yaml:"settings" json:"settings,omitempty"`
}

// Node is the peer address of an operator's node.
type Node struct {
	Address string `yaml:"address" json:"address,omitempty"`
}

// Service is a named set of methods an operator offers.
type Service struct {
	Name string `yaml:"name" json:"name"`
	// Groups may call every method of the service.
	Groups  []string `yaml:"groups" json:"groups,omitempty"`
	Methods []Method `yaml:"methods" json:"methods"`
}

// Method is one callable method; Groups adds to the service's groups.
type Method struct {
	Name   string   `yaml:"name" json:"name"`
	Groups []string `yaml:"groups" json:"groups,omitempty"`
}

// Setting is a grant from the directory about this operator's use of another operator's service.
// The callee reads it from the caller's entry (SettingsFor).
type Setting struct {
	Service  string         `yaml:"service" json:"service"`
	Operator string         `yaml:"operator" json:"operator"`
	Settings map[string]any `yaml:"settings" json:"settings"`
}

// Directory is a loaded, validated directory.
type Directory struct {
	entries map[string]*Entry
	byPin   map[string]string // fingerprint -> operator
}

// Load reads the directory files (directories or files) and validates them.
func Load(paths []string) (*Directory, error) {
	var f File
	if err := config.LoadPaths(paths, "", &f); err != nil {
		return nil, err
	}
	return New(f)
}

// New validates f and builds a Directory from it.
func New(f File) (*Directory, error) {
	d := &Directory{entries: map[string]*Entry{}, byPin: map[string]string{}}
	names := make([]string, 0, len(f.Operators))
	for n := range f.Operators {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		e := f.Operators[name]
		key := "operators." + name
		if e == nil {
			return nil, config.Errorf(key, "empty entry")
		}
		if err := validName(name); err != nil {
			return nil, config.Errorf(key, "%v", err)
		}
		c := *e
		c.Name = name
		for i, fp := range c.Certificates {
			fp = strings.ToLower(strings.ReplaceAll(fp, ":", ""))
			if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
				return nil, config.Errorf(fmt.Sprintf("%s.certificates[%d]", key, i), "want the lowercase hex SHA-256 of the certificate (64 hex digits)")
			}
			c.Certificates[i] = fp
			d.byPin[fp] = name
		}
		seen := map[string]bool{}
		for i, s := range c.Services {
			if s.Name == "" {
				return nil, config.Errorf(fmt.Sprintf("%s.services[%d].name", key, i), "missing")
			}
			for j, m := range s.Methods {
				if m.Name == "" || strings.ContainsAny(m.Name, ". ") {
					return nil, config.Errorf(fmt.Sprintf("%s.services[%d].methods[%d].name", key, i, j), "want a method name without dots or spaces, got %q", m.Name)
				}
				if seen[m.Name] {
					return nil, config.Errorf(fmt.Sprintf("%s.services[%d].methods[%d].name", key, i, j), "method %q offered twice", m.Name)
				}
				seen[m.Name] = true
			}
		}
		d.entries[name] = &c
	}
	for _, e := range d.entries {
		for i, s := range e.Settings {
			if s.Operator != "" && d.entries[s.Operator] == nil {
				return nil, config.Errorf(fmt.Sprintf("operators.%s.settings[%d].operator", e.Name, i), "unknown operator %q", s.Operator)
			}
		}
	}
	return d, nil
}

func validName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("operator names are 1 to 253 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("operator name %q: use lower-case letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// Entry returns the operator's entry, or nil. The entry must not be modified.
func (d *Directory) Entry(name string) *Entry { return d.entries[name] }

// Names lists the operators in name order.
func (d *Directory) Names() []string {
	out := make([]string, 0, len(d.entries))
	for n := range d.entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Method finds the method an operator offers, with the service offering it.
func (e *Entry) Method(name string) (*Service, *Method) {
	for i := range e.Services {
		s := &e.Services[i]
		for j := range s.Methods {
			if s.Methods[j].Name == name {
				return s, &s.Methods[j]
			}
		}
	}
	return nil, nil
}

// InGroup reports whether the operator belongs to one of groups (or groups admits everyone).
func (e *Entry) InGroup(groups []string) bool {
	for _, g := range groups {
		if g == Everyone {
			return true
		}
		for _, mine := range e.Groups {
			if mine == g {
				return true
			}
		}
	}
	return false
}

// SettingsFor returns the settings the directory grants this operator for service at operator,
// decoded into out (a pointer). It reports false when there are none. The first matching grant
// wins; an empty Service or Operator in a grant matches any.
func (e *Entry) SettingsFor(service, operator string, out any) (bool, error) {
	for _, s := range e.Settings {
		if (s.Service == "" || s.Service == service) && (s.Operator == "" || s.Operator == operator) {
			raw, err := json.Marshal(s.Settings)
			if err != nil {
				return true, err
			}
			return true, json.Unmarshal(raw, out)
		}
	}
	return false, nil
}

package config

import (
	"encoding"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	pathType          = reflect.TypeFor[Path]()
	unmarshalerType   = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walker checks one file's node tree against the destination type before yaml decodes it, so
// every unknown key and every wrong value is reported with its full key path; it also rewrites
// relative Path values against the file's directory and records which file set which key.
type walker struct {
	file    string
	dir     string
	origins map[string]string
}

func (w *walker) errf(n *yaml.Node, key, format string, args ...any) error {
	return &KeyError{File: fmt.Sprintf("%s:%d", w.file, n.Line), Key: key, Problem: fmt.Sprintf(format, args...)}
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, key string) error {
	if n.Kind == yaml.AliasNode {
		return w.walk(n.Alias, t, key)
	}
	if key != "" {
		w.origins[key] = w.file
	}
	if n.Tag == "!!null" {
		return nil // null leaves the value as it is
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == pathType:
		if n.Kind != yaml.ScalarNode {
			return w.errf(n, key, "want a file path, got %s", kindName(n))
		}
		if n.Value != "" && !filepath.IsAbs(n.Value) {
			n.Value = filepath.Join(w.dir, n.Value)
		}
		return nil
	case reflect.PointerTo(t).Implements(unmarshalerType), reflect.PointerTo(t).Implements(textUnmarshalType):
		return w.decodeLeaf(n, t, key)
	}
	switch t.Kind() {
	case reflect.Struct:
		return w.walkStruct(n, t, key)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return w.errf(n, key, "want a mapping, got %s", kindName(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if err := w.decodeLeaf(k, t.Key(), join(key, k.Value)); err != nil {
				return err
			}
			if err := w.walk(n.Content[i+1], t.Elem(), join(key, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return w.errf(n, key, "want a list, got %s", kindName(n))
		}
		for i, c := range n.Content {
			if err := w.walk(c, t.Elem(), key+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	case reflect.Interface:
		return nil // free-form value: anything goes
	default:
		return w.decodeLeaf(n, t, key)
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, key string) error {
	if n.Kind != yaml.MappingNode {
		return w.errf(n, key, "want a mapping, got %s", kindName(n))
	}
	fields := yamlFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		sub := join(key, name)
		if seen[name] {
			return w.errf(k, sub, "key appears twice")
		}
		seen[name] = true
		f, ok := fields[name]
		if !ok {
			return w.errf(k, sub, "unknown key (known keys here: %s)", knownKeys(fields))
		}
		if err := w.walk(v, f.Type, sub); err != nil {
			return err
		}
	}
	return nil
}

// decodeLeaf decodes a scalar (or custom-unmarshalled value) into a throwaway value of type t so
// a wrong type is reported here, with the key, rather than by yaml without it.
func (w *walker) decodeLeaf(n *yaml.Node, t reflect.Type, key string) error {
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
			if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "line ") {
				msg = msg[i+2:]
			}
		}
		return w.errf(n, key, "%s (want %s)", msg, typeName(t))
	}
	return nil
}

// yamlFields maps the keys of a struct's mapping to its fields. The keys of a field tagged
// `yaml:",inline"` (a struct) belong to the enclosing mapping, as yaml decodes them.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, inline := yamlKey(f)
		switch {
		case name == "-":
		case inline:
			for k, sub := range yamlFields(f.Type) {
				out[k] = sub
			}
		default:
			out[name] = f
		}
	}
	return out
}

// yamlKey is a field's key in its mapping, and whether its own fields are inlined there.
func yamlKey(f reflect.StructField) (name string, inline bool) {
	name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if f.Type.Kind() == reflect.Struct && (opts == "inline" || strings.Contains(opts, "inline,") || strings.HasSuffix(opts, ",inline")) {
		return "", true
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false
}

func knownKeys(fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return "a duration"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return t.String()
}

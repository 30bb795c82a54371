package config

import (
	"fmt"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"
)

// applyEnv walks the struct fields (and the structs of non-nil pointers: blocks the files set;
// not maps or lists) and, for each field tagged env:"NAME"
// whose variable prefix+NAME is set, decodes the variable's value into the field.
func applyEnv(v reflect.Value, key, prefix string, origins map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, inline := yamlKey(f)
		fv := v.Field(i)
		if inline {
			if err := applyEnv(fv, key, prefix, origins); err != nil {
				return err
			}
			continue
		}
		sub := join(key, name)
		if env := f.Tag.Get("env"); env != "" {
			variable := prefix + env
			if val, ok := os.LookupEnv(variable); ok {
				var n yaml.Node
				if err := yaml.Unmarshal([]byte(val), &n); err != nil || len(n.Content) == 0 {
					n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
				} else {
					n = *n.Content[0]
				}
				if err := n.Decode(fv.Addr().Interface()); err != nil {
					return &KeyError{File: "environment variable " + variable, Key: sub, Problem: fmt.Sprintf("cannot use %q: %v", val, err)}
				}
				origins[sub] = "environment variable " + variable
			}
		}
		if fv.Kind() == reflect.Pointer && !fv.IsNil() && fv.Elem().Kind() == reflect.Struct {
			fv = fv.Elem() // a block the file set, like a proxy's role block
		}
		if fv.Kind() == reflect.Struct {
			if err := applyEnv(fv, sub, prefix, origins); err != nil {
				return err
			}
		}
	}
	return nil
}

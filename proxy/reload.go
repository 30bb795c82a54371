package proxy

import (
	"reflect"
	"slices"
	"strings"
)

// ChangedKeys compares two settings values of one struct type field by field and returns the
// yaml keys (dotted for nested blocks, inline blocks flattened) whose values differ, sorted.
// Keys listed in skip (top-level yaml names) are left out. A reload uses it to name the keys
// that keep their running values until a restart.
func ChangedKeys(old, new any, skip ...string) []string {
	var out []string
	changedKeys(reflect.ValueOf(old), reflect.ValueOf(new), "", skip, &out)
	slices.Sort(out)
	return out
}

// RestartKeys is ChangedKeys less the keys a reload applies (live, as ChangedKeys names them):
// the changed keys that keep their running values until a restart. A key not listed in live is
// named, so a key added to the settings is never silently left at its start value.
func RestartKeys(old, new any, live []string) []string {
	var out []string
	for _, k := range ChangedKeys(old, new) {
		if !slices.Contains(live, k) {
			out = append(out, k)
		}
	}
	return out
}

func changedKeys(a, b reflect.Value, prefix string, skip []string, out *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fa, fb := a.Field(i), b.Field(i)
		if opts == "inline" && fa.Kind() == reflect.Struct {
			changedKeys(fa, fb, prefix, skip, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if prefix == "" && slices.Contains(skip, name) {
			continue
		}
		if fa.Kind() == reflect.Struct && fa.NumField() > 0 {
			changedKeys(fa, fb, prefix+name+".", nil, out)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			*out = append(*out, prefix+name)
		}
	}
}

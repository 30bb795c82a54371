package config

import (
	"errors"
	"fmt"
	"strings"
)

// KeyError is a problem with one settings key. Validate methods return it so that the loader can
// name the file that set the key.
type KeyError struct {
	File    string // the file (or environment variable) that set the key; filled in by the loader
	Key     string // dotted path, e.g. "public.tls.cert_file"
	Problem string
}

func (e *KeyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Errorf returns a *KeyError for key.
func Errorf(key, format string, args ...any) *KeyError {
	return &KeyError{Key: key, Problem: fmt.Sprintf(format, args...)}
}

// Join prefixes the key of a *KeyError with parent (for nested validation); other errors become a
// *KeyError for parent.
func Join(parent string, err error) error {
	if err == nil {
		return nil
	}
	var ke *KeyError
	if errors.As(err, &ke) {
		k := *ke
		if k.Key == "" {
			k.Key = parent
		} else if parent != "" {
			k.Key = parent + "." + k.Key
		}
		return &k
	}
	return &KeyError{Key: parent, Problem: err.Error()}
}

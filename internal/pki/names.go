package pki

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// checkCommonName accepts the free-text names a root may carry ("EPS Dev Root").
func checkCommonName(cn string) error {
	switch {
	case cn == "":
		return fmt.Errorf("common name is empty")
	case len(cn) > MaxCommonNameLen:
		return fmt.Errorf("common name %.20q... is longer than %d bytes", cn, MaxCommonNameLen)
	case !utf8.ValidString(cn):
		return fmt.Errorf("common name %q is not valid UTF-8", cn)
	}
	for _, r := range cn {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("common name %q contains a non-printable character", cn)
		}
	}
	return nil
}

// checkHostName accepts a lowercase DNS name, and a leading "*." label when
// wildcard is set. Upper case is refused rather than folded because leaf
// names double as file names and must round-trip unchanged.
func checkHostName(name string, wildcard bool) error {
	if name == "" {
		return fmt.Errorf("DNS name is empty")
	}
	if len(name) > 253 {
		return fmt.Errorf("DNS name %.20q... is longer than 253 bytes", name)
	}
	rest := name
	if wildcard && strings.HasPrefix(rest, "*.") {
		rest = rest[2:]
	}
	for label := range strings.SplitSeq(rest, ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("DNS name %q: %w", name, err)
		}
	}
	return nil
}

func checkLabel(label string) error {
	if label == "" {
		return fmt.Errorf("empty label")
	}
	if len(label) > 63 {
		return fmt.Errorf("label longer than 63 bytes")
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with '-'", label)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return fmt.Errorf("label %q: only a-z, 0-9 and '-' are allowed", label)
		}
	}
	return nil
}

func checkValidity(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("validity %v is not positive", d)
	}
	if d > MaxValidity {
		return fmt.Errorf("validity %v exceeds the maximum %v", d, MaxValidity)
	}
	return nil
}

package matcher

import "strings"

// rule is one parsed allowed-domains entry.
type rule struct {
	base   string // normalised domain the rule is about
	strict bool   // ".base": only names strictly under base, not base itself
}

// parseRules normalises an allowed-domains list. Entries that are not valid
// host names (including wildcards, "" and ".") are dropped: they allow
// nothing, which is the safe reading of a broken directory setting.
func parseRules(allowed []string) []rule {
	rules := make([]rule, 0, len(allowed))
	for _, a := range allowed {
		r := rule{}
		if strings.HasPrefix(a, ".") {
			r.strict = true
			a = a[1:]
		}
		base, err := Normalize(a)
		if err != nil || isWildcard(base) {
			continue
		}
		r.base = base
		rules = append(rules, r)
	}
	return rules
}

// permits reports whether the rule lets its holder announce the normalised
// name. A wildcard "*.P" covers every one-label name "x.P", so it is
// permitted only when all of those are: that is exactly when P is the
// rule's base or lies under it, whichever form the rule has.
func (r rule) permits(name string) bool {
	if isWildcard(name) {
		p := name[len(wildPrefix):]
		return p == r.base || under(p, r.base)
	}
	if r.strict {
		return under(name, r.base)
	}
	return name == r.base || under(name, r.base)
}

// under reports whether name lies strictly under parent, label-aligned
// ("a.example.com" is under "example.com", "aexample.com" is not).
func under(name, parent string) bool {
	return len(name) > len(parent)+1 &&
		name[len(name)-len(parent)-1] == '.' &&
		strings.HasSuffix(name, parent)
}

func permitted(rules []rule, name string) bool {
	for _, r := range rules {
		if r.permits(name) {
			return true
		}
	}
	return false
}

// Allowed reports whether an operator whose allowed-domains list is allowed
// may announce domain, by the rules Announce applies:
//
//   - ".example.com" allows names strictly under example.com;
//   - "example.com" allows example.com and every name under it;
//   - a wildcard "*.P" is allowed only if every name it can match is.
//
// domain need not be normalised; an invalid domain is never allowed.
// Safe for concurrent use.
func Allowed(allowed []string, domain string) bool {
	name, err := Normalize(domain)
	if err != nil {
		return false
	}
	return permitted(parseRules(allowed), name)
}

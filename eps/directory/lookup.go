package directory

// LookupMethod is the node's built-in method, on its local API only, that gives its own operator
// the directory entries of the operators it names: how a service learns that a grant it relied
// on was removed. Params are LookupParams; the result is a LookupResult.
const LookupMethod = "_directory"

// MaxLookup caps the operators of one lookup.
const MaxLookup = 10000

// LookupParams names the operators to look up.
type LookupParams struct {
	Operators []string `json:"operators"`
}

// LookupResult maps each operator asked for to its entry, or to null when the directory no
// longer has it.
type LookupResult map[string]*Entry

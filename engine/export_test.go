package engine

// PhaseSources is the number of sources holding a connection in the hello and the token phase:
// what the per-source caps keep in their maps.
func PhaseSources(e *Engine) (hello, token int) {
	_, hello = e.helloCap.counts()
	_, token = e.tokenCap.counts()
	return hello, token
}

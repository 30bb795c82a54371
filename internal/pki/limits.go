package pki

import "time"

// Caps on what callers may ask for. They exist so that a typo or hostile
// input turns into an error instead of an absurd certificate or file set.
const (
	// MaxValidity bounds every certificate's lifetime. Development
	// certificates that outlive it are a sign of a unit mistake.
	MaxValidity = 20 * 365 * 24 * time.Hour

	// MaxCommonNameLen is the X.509 upper bound for a common name (RFC 5280 ub-common-name).
	MaxCommonNameLen = 64

	// MaxSANs bounds the subject alternative names of one leaf, the name included.
	MaxSANs = 32

	// MaxLeaves bounds how many leaves a Layout may hold.
	MaxLeaves = 64

	// MaxPEMFileSize bounds how much LoadCA and Layout read from one file;
	// a certificate or key PEM is a few hundred bytes.
	MaxPEMFileSize = 64 << 10

	// backdate is subtracted from NotBefore so that peers whose clocks lag
	// a little still accept a certificate made a moment ago.
	backdate = time.Hour
)

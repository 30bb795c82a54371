package matcher

import "fmt"

// Coder is implemented by every error this package returns for a rejected
// announcement, so a JSON-RPC handler can turn it into an error code without
// knowing each kind:
//
//	var c matcher.Coder
//	if errors.As(err, &c) { code = c.Code() }
type Coder interface {
	error
	Code() int
}

// kind is one class of failure. The codes follow HTTP status codes because
// the original EPS protocol reports per-item errors that way (403, 409).
type kind struct {
	code int
	msg  string
}

func (k *kind) Error() string { return "matcher: " + k.msg }

// Code returns the HTTP-style status code of the kind.
func (k *kind) Code() int { return k.code }

// The kinds of failure. Every error returned for an item is an *Error that
// wraps exactly one of these, so errors.Is(err, ErrTaken) works.
var (
	// ErrInvalid: the name (or operator) breaks the naming rules. Code 400.
	ErrInvalid error = &kind{400, "invalid name"}
	// ErrExpiry: the expiry lies more than MaxExpiry after now. Code 400.
	ErrExpiry error = &kind{400, "timed announcements must expire in 7 days or less"}
	// ErrNotAllowed: the name is not under any of the caller's allowed
	// domains. Code 403.
	ErrNotAllowed error = &kind{403, "not allowed"}
	// ErrNotFound: Withdraw found no announcement of the name by the caller.
	// Code 404.
	ErrNotFound error = &kind{404, "no such announcement"}
	// ErrTaken: another operator holds a live announcement of the name.
	// Code 409.
	ErrTaken error = &kind{409, "already taken"}
	// ErrFull: storing the name would exceed MaxEntries or MaxPerOperator.
	// Code 507 (insufficient storage).
	ErrFull error = &kind{507, "announcement table full"}
)

// Error is a rejection of one name. It names the domain as the caller gave
// it, so a batch reply can be read without lining it up with the request.
type Error struct {
	Domain string // the name as given by the caller
	Reason string // detail, may be empty
	kind   *kind
}

func newError(k error, domain, reason string) *Error {
	return &Error{Domain: domain, Reason: reason, kind: k.(*kind)}
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("matcher: %q: %s", e.Domain, e.kind.msg)
	}
	return fmt.Sprintf("matcher: %q: %s: %s", e.Domain, e.kind.msg, e.Reason)
}

// Unwrap returns the kind (ErrInvalid, ErrTaken, ...).
func (e *Error) Unwrap() error { return e.kind }

// Code returns the HTTP-style status code of the kind: 400, 403, 404, 409
// or 507.
func (e *Error) Code() int { return e.kind.code }

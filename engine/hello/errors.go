package hello

import (
	"errors"
	"fmt"
)

// ErrIncomplete means the input is a valid prefix of a ClientHello and more
// bytes are needed. It is the only error after which calling Parse again with
// a longer input can succeed.
var ErrIncomplete = errors.New("hello: incomplete ClientHello, need more bytes")

// Rejections. Errors returned by Parse wrap exactly one of these (test with
// errors.Is) and carry the detail in their message.
var (
	// ErrNotTLS: the first bytes are not a TLS handshake record header.
	ErrNotTLS = errors.New("hello: not a TLS handshake")
	// ErrSSLv2: an SSLv2-compatible ClientHello, which cannot carry SNI.
	ErrSSLv2 = errors.New("hello: SSLv2-compatible ClientHello")
	// ErrTooLarge: the handshake message is longer than Parser.MaxHandshake
	// or needs more records than Parser.MaxRecords.
	ErrTooLarge = errors.New("hello: ClientHello exceeds the size cap")
	// ErrMalformed: the bytes break the TLS record or ClientHello format.
	ErrMalformed = errors.New("hello: malformed ClientHello")
	// ErrNoSNI: a well-formed hello without a usable host_name.
	ErrNoSNI = errors.New("hello: no server name")
	// ErrBadName: the host_name is not a DNS host name this proxy routes.
	ErrBadName = errors.New("hello: server name is not a valid DNS host name")
)

// reasons is ordered so that Reason reports the sentinel an error wraps.
var reasons = [...]struct {
	err   error
	label string
}{
	{ErrIncomplete, "incomplete"},
	{ErrNotTLS, "not_tls"},
	{ErrSSLv2, "sslv2"},
	{ErrTooLarge, "too_large"},
	{ErrMalformed, "malformed"},
	{ErrNoSNI, "no_sni"},
	{ErrBadName, "bad_name"},
}

// Reason maps an error from Parse to a short stable label for metrics and
// log lines: "incomplete", "not_tls", "sslv2", "too_large", "malformed",
// "no_sni" or "bad_name". It returns "ok" for nil and "other" for an error
// that wraps none of this package's sentinels. Safe for concurrent use.
func Reason(err error) string {
	if err == nil {
		return "ok"
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}

// reject builds a rejection. It allocates, which is acceptable: a rejected
// connection is closed, so the cost is paid once per connection.
func reject(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)
}

package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the only protocol version spoken.
const Version = "2.0"

// MaxBody caps request and response bodies (1 MiB): signaling messages are small.
const MaxBody = 1 << 20

// Request is one JSON-RPC 2.0 call. Params stays raw so that intermediaries (the EPS node) can
// route it without decoding it.
type Request struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
	ID      json.RawMessage `json:"id,omitempty"`
}

// Response is one JSON-RPC 2.0 answer: exactly one of Result and Error is set.
type Response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	ID      json.RawMessage `json:"id"`
}

// Error is a JSON-RPC error object; it is also a Go error.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`

	unsent bool // set by Client.Post: see Unsent
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (code %d)", e.Message, e.Code)
}

// Codes: the JSON-RPC 2.0 reserved ones, then the application codes of the EPS network. The
// application codes follow HTTP status numbers so that logs read naturally.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603

	CodeBadRequest  = 400 // params valid JSON but refused by the handler
	CodeNotAllowed  = 403 // the caller may not call this method (directory permissions)
	CodeNotFound    = 404 // unknown operator, or nothing matches (e.g. no announcement)
	CodeConflict    = 409 // a name held by another operator
	CodeFull        = 507 // a table, or a caller's share of it, is full
	CodeOverloaded  = 503 // a bounded queue or concurrency cap is full
	CodeUnreachable = 502 // the peer node or the local service cannot be reached
	CodeTimeout     = 504 // the call did not complete within its deadline
)

// Errorf builds an *Error.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, wrapping a plain error as an internal error.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var c interface{ Code() int }
	if errors.As(err, &c) {
		return &Error{Code: c.Code(), Message: err.Error()}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

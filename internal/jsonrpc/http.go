package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
)

// ReadRequest reads and checks one request body of at most max bytes. The returned *Error is
// ready to be sent back.
func ReadRequest(w http.ResponseWriter, r *http.Request, max int64) (*Request, *Error) {
	if r.Method != http.MethodPost {
		return nil, Errorf(CodeInvalidRequest, "method %s not allowed: JSON-RPC requests are POSTed", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, Errorf(CodeInvalidRequest, "content type %q: want application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, Errorf(CodeInvalidRequest, "request body larger than %d bytes", max)
		}
		return nil, Errorf(CodeParseError, "reading the request: %v", err)
	}
	return ParseRequest(body)
}

// ParseRequest decodes and checks a request body.
func ParseRequest(body []byte) (*Request, *Error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, Errorf(CodeParseError, "request is not a JSON-RPC object: %v", err)
	}
	if dec.More() {
		return nil, Errorf(CodeParseError, "trailing data after the request object")
	}
	if req.JSONRPC != Version {
		return &req, Errorf(CodeInvalidRequest, "jsonrpc must be %q", Version)
	}
	if req.Method == "" {
		return &req, Errorf(CodeInvalidRequest, "method is missing")
	}
	if len(req.ID) > 0 {
		switch req.ID[0] {
		case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'n':
		default:
			return &req, Errorf(CodeInvalidRequest, "id must be a string, a number or null")
		}
		if len(req.ID) > 256 {
			return &req, Errorf(CodeInvalidRequest, "id longer than 256 bytes")
		}
	}
	if len(req.Params) > 0 && req.Params[0] != '{' && req.Params[0] != '[' && !bytes.Equal(req.Params, []byte("null")) {
		return &req, Errorf(CodeInvalidParams, "params must be an object")
	}
	return &req, nil
}

// WriteResult sends a successful response.
func WriteResult(w http.ResponseWriter, id json.RawMessage, result any) {
	raw, err := json.Marshal(result)
	if err != nil {
		WriteError(w, id, Errorf(CodeInternal, "encoding the result: %v", err))
		return
	}
	WriteRaw(w, id, raw)
}

// WriteRaw sends a successful response whose result is already encoded.
func WriteRaw(w http.ResponseWriter, id json.RawMessage, raw json.RawMessage) {
	write(w, &Response{JSONRPC: Version, Result: raw, ID: idOrNull(id)})
}

// WriteError sends an error response. JSON-RPC errors travel with HTTP 200, so that every
// response body is a JSON-RPC object and clients need one code path.
func WriteError(w http.ResponseWriter, id json.RawMessage, e *Error) {
	write(w, &Response{JSONRPC: Version, Error: e, ID: idOrNull(id)})
}

func write(w http.ResponseWriter, resp *Response) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func idOrNull(id json.RawMessage) json.RawMessage {
	if len(id) == 0 {
		return json.RawMessage("null")
	}
	return id
}

// Refuse answers a request with e without reading its body, and closes an HTTP/1 connection
// after the answer, so that a caller refused for who it is cannot make the server read what it
// sends.
func Refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	WriteError(w, nil, e)
}

// Accept reads a request of at most max bytes; when it is not a valid call, Accept sends the
// error response itself and returns nil.
func Accept(w http.ResponseWriter, r *http.Request, max int64) *Request {
	req, e := ReadRequest(w, r, max)
	if e != nil {
		var id json.RawMessage
		if req != nil {
			id = req.ID
		}
		WriteError(w, id, e)
		return nil
	}
	return req
}

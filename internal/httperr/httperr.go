// Package httperr is the error every layer of the edge returns when a
// request does not get its normal answer: the status, a stable public code
// and message for the JSON body, and the internal cause only the log sees.
// internal/edge renders it; internal/stream returns it.
package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error is a refusal or failure with its public face and private cause.
type Error struct {
	Status  int
	Code    string // stable snake_case, e.g. token_expired
	Message string // for the client; never a token, secret or signature
	Err     error  // the cause, for logs only
}

// New returns an Error.
func New(status int, code, msg string, cause error) *Error {
	return &Error{Status: status, Code: code, Message: msg, Err: cause}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Write renders err as the JSON error body {"error", "message",
// "request_id"} and returns the *Error it rendered. Only an *Error's
// public code and message reach the client; anything else is a 500
// internal. The request id is the answer's X-Request-Id, which the edge
// sets before any handler runs. A HEAD answer gets the headers only.
func Write(w http.ResponseWriter, r *http.Request, err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		e = New(http.StatusInternalServerError, "internal", "internal error", err)
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Range")
	h.Del("Etag")
	h.Del("Last-Modified")
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["X-Content-Type-Options"] = hdrNoSniff
	if e.Status == http.StatusUnauthorized {
		h["Www-Authenticate"] = hdrBearer
	}
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return e
	}
	var id string
	if v := h["X-Request-Id"]; len(v) > 0 {
		id = v[0]
	}
	b, _ := json.Marshal(body{e.Code, e.Message, id})
	w.Write(append(b, '\n'))
	return e
}

type body struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
	hdrNoSniff = []string{"nosniff"}
	hdrBearer  = []string{`Bearer realm="edge"`}
)

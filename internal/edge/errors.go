package edge

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error is what a handler returns when it does not answer normally: the
// status, a stable public code and message for the JSON body, and the
// internal cause that only the log sees.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func newError(status int, code, msg string, cause error) *Error {
	return &Error{Status: status, Code: code, Message: msg, Err: cause}
}

// Errors with no cause are built once.
var (
	errNotFound       = newError(http.StatusNotFound, "not_found", "no such route", nil)
	errUnknownSource  = newError(http.StatusNotFound, "unknown_source", "no source by that name is configured", nil)
	errUnknownBucket  = newError(http.StatusNotFound, "unknown_bucket", "the storage URL names no configured source", nil)
	errForbidden      = newError(http.StatusForbidden, "forbidden", "no grant of the token covers this object", nil)
	errMethod         = newError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed", nil)
	errObjectNotFound = newError(http.StatusNotFound, "object_not_found", "the object does not exist", nil)
	errMissingURL     = newError(http.StatusBadRequest, "bad_storage_url", "the url query parameter is required", nil)
	errURLSignature   = newError(http.StatusForbidden, "url_invalid", "the signed URL does not verify", nil)
	errURLExpired     = newError(http.StatusForbidden, "url_expired", "the signed URL has expired", nil)
)

// writeError renders err as the JSON error body. Only an *Error's public
// code and message reach the client; anything else is a 500.
func writeError(w http.ResponseWriter, r *http.Request, err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		e = newError(http.StatusInternalServerError, "internal", "internal error", err)
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Range")
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="edge"`)
	}
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return e
	}
	b, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	w.Write(append(b, '\n'))
	return e
}

package edge

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/edgeproxy/edge/internal/httperr"
)

// Error is what a handler returns when it does not answer normally; the
// stream package returns the same type, so one renderer serves both.
type Error = httperr.Error

func newError(status int, code, msg string, cause error) *Error {
	return httperr.New(status, code, msg, cause)
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

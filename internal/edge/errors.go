package edge

import (
	"net/http"

	"github.com/edgeproxy/edge/internal/httperr"
	"github.com/edgeproxy/edge/internal/source"
	"github.com/edgeproxy/edge/internal/stream"
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
	errBodyNotAllowed = newError(http.StatusBadRequest, "body_not_allowed", "no route takes a request body (Content-Length or Transfer-Encoding)", nil)
	errKeyTooLong     = newError(http.StatusBadRequest, "key_too_long", "the object key is longer than storage allows (1024 bytes)", nil)
	errKeySlash       = newError(http.StatusBadRequest, "bad_reference", "malformed reference: the object key must not start with '/'", nil)
)

// writeError renders err as the JSON error body (httperr.Write: code,
// message and the request's id). Only an *Error's public code and message
// reach the client; anything else is a 500.
func writeError(w http.ResponseWriter, r *http.Request, err error) *Error {
	return httperr.Write(w, r, err)
}

// checkObjectRequest refuses, before anything is signed, what storage
// would answer 400 to: a key longer than the provider takes, a full key
// starting with '/', request headers past what storage accepts. These are
// the client's mistakes, not storage failures.
func checkObjectRequest(r *http.Request, src *Source, key string) error {
	if src.Prefix == "" && key[0] == '/' {
		return errKeySlash
	}
	if len(src.Prefix)+len(key) > source.MaxKeyBytes && source.KeyTooLong(src.cfg.Provider, src.Prefix+key) {
		return errKeyTooLong
	}
	if src.mode == modeStream && src.file == nil {
		return stream.CheckRequest(r.Header)
	}
	return nil
}

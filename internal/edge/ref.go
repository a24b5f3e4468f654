package edge

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/edgeproxy/edge/internal/signer"
)

// Reference errors; each is answered 400 bad_reference.
var (
	errEmptyKey   = errors.New("empty key")
	errDotSegment = errors.New("'.' and '..' segments are not allowed")
	errNUL        = errors.New("NUL is not allowed")
	errEscape     = errors.New("bad percent-escape")
	errUTF8       = errors.New("key is not valid UTF-8")
	errNoSource   = errors.New("missing source name")
)

// parseRef splits the escaped path after a route's prefix ("/v1/s/") into
// the source name and the key, percent-decoded once and validated. The key
// is relative to the source's prefix; validation keeps it inside.
func parseRef(escaped string) (source, key string, err error) {
	source, rawKey, ok := strings.Cut(escaped, "/")
	if !ok || source == "" {
		return "", "", errNoSource
	}
	if strings.IndexByte(source, '%') >= 0 {
		if source, err = url.PathUnescape(source); err != nil {
			return "", "", errEscape
		}
	}
	key = rawKey
	if strings.IndexByte(rawKey, '%') >= 0 {
		if key, err = url.PathUnescape(rawKey); err != nil {
			return "", "", errEscape
		}
	}
	if err := validateKey(key); err != nil {
		return "", "", err
	}
	return source, key, nil
}

// validateKey refuses keys that could name something outside their prefix
// on any backend: empty, NUL, invalid UTF-8, or a "." or ".." segment
// (S3 treats them literally, but a file backend, a proxy in front of
// storage or a browser normalising the URL would not).
func validateKey(key string) error {
	if key == "" {
		return errEmptyKey
	}
	if strings.IndexByte(key, 0) >= 0 {
		return errNUL
	}
	if !utf8.ValidString(key) {
		return errUTF8
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return errDotSegment
		}
	}
	if strings.IndexByte(key, '\\') >= 0 {
		// Windows-style separators hide dot segments from the check above.
		for seg := range strings.SplitSeq(strings.ReplaceAll(key, "\\", "/"), "/") {
			if seg == "." || seg == ".." {
				return errDotSegment
			}
		}
	}
	return nil
}

// escapeKey percent-encodes a key for a /v1/s path.
func escapeKey(key string) string { return signer.EscapePath(key) }

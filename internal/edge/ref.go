package edge

import (
	"errors"
	"net/url"
	"strings"

	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/source"
)

// Reference errors; each is answered 400 bad_reference.
var (
	errEmptyKey   = source.ErrEmptyKey
	errDotSegment = source.ErrDotSegment
	errNUL        = source.ErrNUL
	errEscape     = errors.New("bad percent-escape")
	errUTF8       = source.ErrUTF8
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
// (source.ValidateKey).
func validateKey(key string) error { return source.ValidateKey(key) }

// escapeKey percent-encodes a key for a /v1/s path.
func escapeKey(key string) string { return signer.EscapePath(key) }

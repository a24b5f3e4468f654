package signer

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// File serves a local directory as a source. Redirect mode sends browsers
// to an edge-signed, expiring URL (/v1/f/...) that the edge verifies
// itself; stream mode serves the file directly.
type File struct {
	fsys    fs.FS
	base    string // URL path the signed URLs start with, e.g. /v1/f/local/
	prefix  string // the source's prefix, stripped from keys in URLs
	keys    [][]byte
	closeFn func() error
}

// FileOptions are what the file signer takes from outside its config.
type FileOptions struct {
	// BasePath is the URL path signed URLs start with, ending in "/".
	BasePath string
	// Prefix is the source's key prefix; URLs carry keys relative to it.
	Prefix string
	// FS overrides Config.Root (the demo serves an embedded tree).
	FS fs.FS
}

// NewFile opens the source's root. The root is opened with os.OpenRoot, so
// no key, symlink included, resolves outside it.
func NewFile(cfg Config, opts FileOptions) (*File, error) {
	f := &File{fsys: opts.FS, base: opts.BasePath, prefix: opts.Prefix}
	if f.fsys == nil {
		root, err := os.OpenRoot(cfg.Root)
		if err != nil {
			return nil, fmt.Errorf("root: %w", err)
		}
		f.fsys, f.closeFn = root.FS(), root.Close
	}
	for i, k := range cfg.Credentials.URLKeys {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) < 32 {
			return nil, fmt.Errorf("credentials.url_keys[%d]: want base64 of at least 32 bytes", i)
		}
		f.keys = append(f.keys, raw)
	}
	if len(f.keys) == 0 {
		// No shared key configured: URLs hold for this process only.
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		f.keys = [][]byte{k}
	}
	return f, nil
}

// FS is the tree the source serves; keys are paths in it.
func (f *File) FS() fs.FS { return f.fsys }

// Close releases the root directory.
func (f *File) Close() error {
	if f.closeFn != nil {
		return f.closeFn()
	}
	return nil
}

// mac signs the URL's base path (which names the source), the key and
// the expiry: sources sharing url_keys cannot take each other's URLs.
func (f *File) mac(key []byte, relKey string, exp int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(f.base))
	m.Write([]byte{0})
	m.Write([]byte(relKey))
	m.Write([]byte{0})
	m.Write(strconv.AppendInt(nil, exp, 10))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Presign implements Signer: the URL is BasePath + the key relative to the
// source prefix, escaped, with exp (Unix seconds) and sig (HMAC-SHA256 with
// the first configured key).
func (f *File) Presign(_ context.Context, r Request) (Presigned, error) {
	if err := CheckTTL(r.TTL); err != nil {
		return Presigned{}, fmt.Errorf("presign: %w", err)
	}
	rel, ok := strings.CutPrefix(r.Key, f.prefix)
	if !ok {
		return Presigned{}, fmt.Errorf("presign: key outside the source prefix")
	}
	expires := r.At.Truncate(time.Second).Add(r.TTL)
	exp := expires.Unix()
	var b strings.Builder
	b.Grow(len(f.base) + len(rel)*3/2 + 80)
	b.WriteString(f.base)
	b.WriteString(EscapePath(rel))
	b.WriteString("?exp=")
	b.WriteString(strconv.FormatInt(exp, 10))
	b.WriteString("&sig=")
	b.WriteString(f.mac(f.keys[0], rel, exp))
	return presigned(r, b.String(), expires), nil
}

// Errors of Verify.
var (
	ErrURLExpired   = errors.New("signed URL expired")
	ErrURLSignature = errors.New("signed URL signature does not verify")
)

// Verify checks a signed file URL: relKey (relative to the prefix,
// decoded), the exp and sig query values, at now. Every configured key is
// tried, so keys can rotate; comparisons take constant time.
func (f *File) Verify(relKey, exp, sig string, now time.Time) error {
	e, err := strconv.ParseInt(exp, 10, 64)
	// Only the spelling Presign writes: "+1" or "01" would verify as 1,
	// giving one signed URL several forms.
	if err != nil || sig == "" || strconv.FormatInt(e, 10) != exp {
		return ErrURLSignature
	}
	ok := false
	for _, k := range f.keys {
		if hmac.Equal([]byte(f.mac(k, relKey, e)), []byte(sig)) {
			ok = true
		}
	}
	if !ok {
		return ErrURLSignature
	}
	if now.Unix() >= e {
		return ErrURLExpired
	}
	return nil
}

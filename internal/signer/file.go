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
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// File serves a local directory as a source. Redirect mode sends browsers
// to an edge-signed, expiring URL (/v1/f/...) that the edge verifies
// itself; stream mode serves the file directly.
type File struct {
	fsys   fs.FS    // FileOptions.FS (the demo's embedded tree), else nil
	root   *os.Root // the root directory, else nil
	dir    *os.File // the same directory, for openat2 on Linux
	abs    string   // its absolute path: absolute link targets are judged by it
	follow bool     // follow_symlinks: links whose targets stay under prefix
	base   string   // URL path the signed URLs start with, e.g. /v1/f/local/
	prefix string   // the source's prefix, stripped from keys in URLs
	keys   [][]byte
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

// NewFile opens the source's root. Open serves exactly the file a key
// names: see Open for symbolic links.
func NewFile(cfg Config, opts FileOptions) (*File, error) {
	f := &File{fsys: opts.FS, base: opts.BasePath, prefix: opts.Prefix, follow: cfg.FollowSymlinks}
	if f.fsys == nil {
		abs, err := filepath.Abs(cfg.Root)
		if err != nil {
			return nil, fmt.Errorf("root: %w", pathCause(err))
		}
		root, err := os.OpenRoot(abs)
		if err != nil {
			return nil, fmt.Errorf("root: %w", pathCause(err))
		}
		dir, err := os.Open(abs)
		if err != nil {
			root.Close()
			return nil, fmt.Errorf("root: %w", pathCause(err))
		}
		f.root, f.dir, f.abs = root, dir, abs
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

// pathCause is err without the path a *fs.PathError names: the path is the
// operator's value, and errors name keys, not values.
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Close releases the root directory.
func (f *File) Close() error {
	if f.root == nil {
		return nil
	}
	return errors.Join(f.root.Close(), f.dir.Close())
}

// maxLinks bounds the symbolic links one Open follows, as the kernel's
// MAXSYMLINKS (40) does.
const maxLinks = 40

// Open opens the file (or directory) name, a slash-separated path relative
// to the root, the source's prefix included; File is an fs.FS.
//
// It serves exactly the file its name names. By default no symbolic link
// is followed, in any component: a link inside the root could otherwise
// serve a file outside the source's prefix, and a link under one grant's
// prefix a file under another's (cats/to-dogs). With follow_symlinks, a
// link is followed only when its target stays under the source prefix.
// Every refusal is fs.ErrNotExist: a link is as absent as a missing file.
// On Linux the final open is openat2 with RESOLVE_NO_SYMLINKS and
// RESOLVE_BENEATH, so a link swapped in meanwhile is refused by the kernel.
func (f *File) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if f.fsys != nil {
		return f.fsys.Open(name) // an embedded tree has no links
	}
	if f.follow {
		resolved, err := f.resolve(name)
		if err != nil {
			return nil, err
		}
		name = resolved
	}
	return f.openNoFollow(name)
}

// notExist is the answer to every path Open refuses.
func notExist(name string) error {
	return &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// underPrefix reports whether p (clean, relative to the root) is the
// source prefix's directory or below it.
func (f *File) underPrefix(p string) bool {
	return f.prefix == "" || p+"/" == f.prefix || strings.HasPrefix(p, f.prefix)
}

// resolve returns name with every symbolic link replaced by its target,
// walking one component at a time with Lstat, or fs.ErrNotExist when a
// link's target leaves the prefix (or the root), dangles, or links chain
// more than maxLinks deep. The path it returns has no links left, so
// opening it with no links followed opens what was judged.
func (f *File) resolve(name string) (string, error) {
	parts := strings.Split(name, "/")
	done := "" // the resolved part: link-free, so ".." in a target is lexical
	links := 0
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		if p == "." || p == "" {
			continue
		}
		next := path.Join(done, p)
		fi, err := f.root.Lstat(next)
		if err != nil {
			return "", notExist(name)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if links++; links > maxLinks {
			return "", notExist(name)
		}
		target, err := f.root.Readlink(next)
		if err != nil {
			return "", notExist(name)
		}
		if filepath.IsAbs(target) {
			rel, err := filepath.Rel(f.abs, filepath.Clean(target))
			if err != nil {
				return "", notExist(name)
			}
			target = filepath.ToSlash(rel)
		} else {
			target = path.Join(done, filepath.ToSlash(target))
		}
		if !fs.ValidPath(target) || !f.underPrefix(target) {
			return "", notExist(name) // out of the root, or of the prefix
		}
		parts = append(strings.Split(target, "/"), parts...)
		done = ""
	}
	if done == "" {
		done = "."
	}
	if !f.underPrefix(done) && name != "." {
		return "", notExist(name)
	}
	return done, nil
}

// openNoFollowWalk opens name under the root after checking, component by
// component with Lstat, that none is a symbolic link. os.Root keeps the
// open inside the root whatever happens between the check and the open.
func (f *File) openNoFollowWalk(name string) (fs.File, error) {
	if name != "." {
		for i := 0; i <= len(name); i++ {
			if i < len(name) && name[i] != '/' {
				continue
			}
			fi, err := f.root.Lstat(name[:i])
			if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
				return nil, notExist(name)
			}
			if i == len(name) && !fi.Mode().IsRegular() && !fi.IsDir() {
				// A FIFO would block the open (see openNoFollow).
				return nil, notExist(name)
			}
		}
	}
	r, err := f.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notExist(name)
		}
		return nil, err
	}
	return r, nil
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

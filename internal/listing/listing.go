// Package listing lists every object under a source's prefix, in storage
// (byte) order and with the source's own credentials, and writes the
// JSON-lines manifest of "Asset sync and checks" (PRODUCT.md): one line per
// object, optionally diffed against an older manifest and checked by a hook,
// then a summary line. Memory stays flat whatever the number of objects:
// pages stream through, the diff is a merge of two key-ordered streams and
// checks run in a bounded window.
//
// The package does not import internal/edge: it takes a Lister (built by New
// from a signer.Signer and the source's prefix) and a CheckFunc.
package listing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
)

// Object is one listed object.
type Object struct {
	// Key is relative to the source's prefix, as /v1/s/SOURCE/KEY names it.
	Key string
	// StorageKey is the key in the bucket (prefix + Key): what a checker
	// presigns to read the object. It is not written to the manifest.
	StorageKey   string
	Size         int64
	ETag         string // as the store gives it, quotes included (Azure's gain quotes, see Remote)
	LastModified time.Time
}

// Lister lists the objects under one prefix in byte order of their keys,
// calling yield for each as it arrives. It stops at the first error yield
// returns, or when ctx ends, and returns that error.
type Lister interface {
	List(ctx context.Context, yield func(Object) error) error
}

// ListerFunc adapts a function to Lister, for tests.
type ListerFunc func(ctx context.Context, yield func(Object) error) error

// List calls f.
func (f ListerFunc) List(ctx context.Context, yield func(Object) error) error { return f(ctx, yield) }

// PageSigner presigns the URL of one page of a bucket listing with the
// source's own credentials. The S3 (and GCS HMAC interop), GCS and Azure
// signers implement it (internal/signer/list_*.go).
type PageSigner interface {
	PresignList(ctx context.Context, r signer.ListRequest) (string, error)
}

// ErrOrder is wrapped by the error a listing returns when the store answers
// keys out of byte order (or twice): a manifest must be key-ordered for the
// diff to be exact, and memory stays flat only if nothing is re-sorted.
var ErrOrder = errors.New("keys out of order")

// orderError reports a key that does not sort after the one before it.
// Keys are quoted with %q: control characters cannot forge a line.
func orderError(what, prev, key string) error {
	return fmt.Errorf("%s: %w: %q after %q", what, ErrOrder, key, prev)
}

// New returns the Lister for a source: a Remote for signers that can
// presign list pages (S3, S3-compatible, GCS, Azure), a File walk for file
// sources. prefix is the source's prefix; opts may be the zero value.
func New(sg signer.Signer, prefix string, opts RemoteOptions) (Lister, error) {
	switch s := sg.(type) {
	case *signer.File:
		return &File{FS: s, Prefix: prefix}, nil
	case *signer.Azure:
		if opts.Order == nil {
			opts.Order = UTF16Order
		}
		return NewRemote(s, prefix, opts), nil
	case PageSigner:
		return NewRemote(s, prefix, opts), nil
	case nil:
		return nil, errors.New("listing: no signer")
	}
	return nil, fmt.Errorf("listing: the source's signer (%T) cannot list", sg)
}

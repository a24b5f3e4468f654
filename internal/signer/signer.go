// Package signer holds one presigner per storage provider (S3 and
// S3-compatible stores, Google Cloud Storage, Azure Blob, local files) behind
// one small interface, so the HTTP layer never knows which cloud it talks to.
package signer

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// MaxTTL is the longest lifetime a presigned URL may have. SigV4 refuses
// X-Amz-Expires above 604800 seconds, GCS V4 the same, so every provider
// shares the limit.
const MaxTTL = 7 * 24 * time.Hour

// Request asks for one presigned URL.
type Request struct {
	// Method is http.MethodGet or http.MethodHead: the URL is only valid for it.
	Method string
	// Key is the object key in the bucket, the source's prefix included.
	Key string
	// At is the signing time. Callers round it down to the start of a signing
	// window so every replica signs byte-identical URLs (see PRODUCT.md).
	At time.Time
	// TTL is the requested lifetime; the signer may shorten it (credentials
	// that expire sooner) and says so in Presigned.Expires.
	TTL time.Duration
	// ForFetch is set when the edge itself fetches the URL (stream mode):
	// the signer may then require headers a browser could not send (SSE-C).
	ForFetch bool
}

// Presigned is a signed URL and what using it requires.
type Presigned struct {
	URL string
	// Header holds headers the request must carry (SSE-C key headers); it is
	// only set for ForFetch requests and never leaves the edge.
	Header http.Header
	// Expires is when the URL stops working: At+TTL, or earlier when the
	// credentials that signed it expire sooner.
	Expires time.Time
}

// Signer presigns object URLs for one configured source.
type Signer interface {
	Presign(ctx context.Context, r Request) (Presigned, error)
}

// SignerFunc adapts a function to Signer, for tests.
type SignerFunc func(ctx context.Context, r Request) (Presigned, error)

// Presign calls f.
func (f SignerFunc) Presign(ctx context.Context, r Request) (Presigned, error) { return f(ctx, r) }

// Checker is implemented by signers whose credentials can be resolved ahead
// of the first request; /readyz reports its error.
type Checker interface {
	Check(ctx context.Context) error
}

// ErrCredentials wraps every failure to obtain credentials; the HTTP layer
// answers it with 503 credentials_unavailable.
var ErrCredentials = errors.New("credentials unavailable")

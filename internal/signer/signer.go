// Package signer holds one presigner per storage provider (S3 and
// S3-compatible stores, Google Cloud Storage, Azure Blob, local files) behind
// one small interface, so the HTTP layer never knows which cloud it talks to.
package signer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// MaxTTL is the longest lifetime a presigned URL may have. SigV4 refuses
// X-Amz-Expires above 604800 seconds, GCS V4 the same, so every provider
// shares the limit.
const MaxTTL = 7 * 24 * time.Hour

// MinTTL is the shortest lifetime a presigned URL may have: every
// provider's expiry counts whole seconds.
const MinTTL = time.Second

// CheckTTL is the one check of a URL lifetime: within [MinTTL, MaxTTL].
// Every signer applies it to Request.TTL; configs may use it for url_ttl.
func CheckTTL(ttl time.Duration) error {
	if ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("ttl %s outside [%s, %s]", ttl, MinTTL, MaxTTL)
	}
	return nil
}

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
	// Window is the signing window At starts (zero: none). It bounds how
	// long the URL may be handed out: see Presigned.ServeUntil.
	Window time.Duration
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
	// ServeUntil is when the URL stops being handed out (and cached): see
	// serveUntil.
	ServeUntil time.Time
}

// serveUntil is the one rule for how long a URL signed for r, expiring at
// expires, may be handed out: until its signing window ends (so every
// replica switches to the next window's URL together, and a URL is never
// served with less than half its life left), and never within a minute (a
// quarter of a short TTL) of its expiry. A URL cut short by expiring
// credentials keeps at least CredentialRefresh: the signer refreshes
// credentials that early, so the next window's URL has that much life.
func serveUntil(r Request, expires time.Time) time.Time {
	margin := min(time.Minute, r.TTL/4)
	if expires.Before(r.At.Add(r.TTL)) {
		margin = max(margin, CredentialRefresh)
	}
	limit := expires.Add(-margin)
	if r.Window <= 0 {
		return limit
	}
	if until := r.At.Add(r.Window); until.Before(limit) {
		return until
	}
	return limit
}

// presigned is every signer's answer: url, expiring at expires, with
// ServeUntil from the one rule.
func presigned(r Request, url string, expires time.Time) Presigned {
	return Presigned{URL: url, Expires: expires, ServeUntil: serveUntil(r, expires)}
}

// Signer presigns object URLs for one configured source.
type Signer interface {
	Presign(ctx context.Context, r Request) (Presigned, error)
}

// Checker is implemented by signers whose credentials can be resolved ahead
// of the first request; /readyz reports its error.
type Checker interface {
	Check(ctx context.Context) error
}

// ErrCredentials wraps every failure to obtain credentials; the HTTP layer
// answers it with 503 credentials_unavailable.
var ErrCredentials = errors.New("credentials unavailable")

package signer

import "time"

// ListTTL is how long a presigned list URL lives when ListRequest.TTL is
// zero: a page is fetched the moment it is signed, so minutes are plenty,
// and a leaked URL (it names the whole prefix) dies quickly.
const ListTTL = 5 * time.Minute

// ListRequest asks for the URL of one page of a listing: the objects whose
// keys start with Prefix, after the page that answered Token.
type ListRequest struct {
	// Prefix is the storage prefix (the source's prefix, included); the
	// store lists only keys that start with it.
	Prefix string
	// Token continues a listing: the previous page's S3 continuation
	// token, or its GCS or Azure marker. Empty for the first page.
	Token string
	// MaxKeys caps the page (S3 and GCS max-keys, Azure maxresults);
	// 0 leaves the store's default (1000 for S3 and GCS, 5000 for Azure).
	MaxKeys int
	// At is the signing time; zero means the signer's clock.
	At time.Time
	// TTL is the URL's lifetime; zero means ListTTL.
	TTL time.Duration
}

// ttl returns r.TTL, or ListTTL when unset, capped at MaxTTL.
func (r ListRequest) ttl() time.Duration {
	if r.TTL <= 0 {
		return ListTTL
	}
	return min(r.TTL, MaxTTL)
}

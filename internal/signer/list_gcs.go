package signer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// PresignList returns a V4 signed URL (GOOG4-RSA-SHA256, the source's own
// service account) for one page of the XML API's bucket listing: GET on
// the bucket with prefix, marker and max-keys as signed query parameters
// (the canonical query covers them, so none can be changed or added).
// GCS answers a ListBucketResult whose NextMarker continues the listing.
func (g *GCS) PresignList(ctx context.Context, r ListRequest) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	at := r.At
	if at.IsZero() {
		return "", errors.New("gcs: signing time (ListRequest.At) not set")
	}
	secs := int64(r.ttl() / time.Second)
	if secs < 1 {
		return "", fmt.Errorf("gcs: ttl %s: want at least 1s", r.TTL)
	}
	var q []gcsParam
	if r.Prefix != "" {
		q = append(q, gcsParam{"prefix", r.Prefix})
	}
	if r.Token != "" {
		q = append(q, gcsParam{"marker", r.Token})
	}
	if r.MaxKeys > 0 {
		q = append(q, gcsParam{"max-keys", strconv.Itoa(r.MaxKeys)})
	}
	return g.sign(&gcsV4Request{method: http.MethodGet, at: at.UTC().Truncate(time.Second), expires: secs, ext: gcsQuery(q)}, nil)
}

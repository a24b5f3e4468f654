package signer

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PresignList returns a SigV4 presigned ListObjectsV2 URL for one page:
// GET on the bucket with list-type=2, prefix, continuation-token and
// encoding-type=url (keys come back percent-encoded, so a key holding a
// character XML 1.0 cannot carry still lists). It signs with the source's
// own credentials, capped at their expiry like Presign.
func (s *S3) PresignList(ctx context.Context, r ListRequest) (string, error) {
	cc, err := s.creds.get(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	at := r.At
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC().Truncate(time.Second)
	ttl := r.ttl()
	if cc.creds.CanExpire {
		if left := cc.creds.Expires.Add(-CredentialMargin).Sub(at); left < ttl {
			ttl = left
		}
	}
	secs := int64(ttl / time.Second)
	if secs < 1 {
		return "", fmt.Errorf("%w: credentials expire at %s, within %s of now",
			ErrCredentials, cc.creds.Expires.UTC().Format(time.RFC3339), CredentialMargin)
	}
	q := url.Values{"list-type": {"2"}, "encoding-type": {"url"}, "prefix": {r.Prefix}}
	if r.Token != "" {
		q.Set("continuation-token", r.Token)
	}
	if r.MaxKeys > 0 {
		q.Set("max-keys", strconv.Itoa(r.MaxKeys))
	}
	q.Set("X-Amz-Expires", strconv.FormatInt(secs, 10))
	path := s.listPath()
	req := &http.Request{
		Method: http.MethodGet,
		URL: &url.URL{
			Scheme:   s.scheme,
			Host:     s.host,
			Path:     path,
			RawPath:  EscapePath(path),
			RawQuery: strings.ReplaceAll(q.Encode(), "+", "%20"),
		},
		Host:   s.host,
		Header: http.Header{},
	}
	signed, _, err := s.signer.PresignHTTP(ctx, cc.creds, req, "UNSIGNED-PAYLOAD", "s3", s.region, at)
	if err != nil {
		return "", fmt.Errorf("presign list: %w", err)
	}
	return signed, nil
}

// listPath is the bucket's own path: "/BUCKET" in path style (as the SDKs
// send ListObjectsV2), "/" when the host names the bucket; an endpoint's
// base path comes first.
func (s *S3) listPath() string {
	if p, ok := strings.CutSuffix(s.path, "/"+s.bucket+"/"); ok {
		return p + "/" + s.bucket
	}
	return s.path
}

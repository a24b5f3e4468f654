package edge

import (
	"errors"
	"net/url"
	"strings"

	"github.com/edgeproxy/edge/internal/signer"
)

// Location is an object named by a storage URL, before it is matched to a
// configured source.
type Location struct {
	Provider string // s3, gcs, azure; "" for an http(s) URL on another host
	Bucket   string // bucket or container; "" when the host decides it
	Account  string // azure
	Host     string // lowercased host[:port] of an http(s) URL
	Scheme   string // http or https; "" for s3:// and gs://
	// Path is the decoded path of an http(s) URL on an unknown host
	// (without the leading '/'), matched against custom endpoints.
	Path string
	Key  string
}

var errStorageURL = errors.New("not a storage URL this edge understands")

// ParseStorageURL reads the storage URL forms platforms keep in their
// databases: s3://BUCKET/KEY and gs://BUCKET/KEY (the key taken as is, as
// the AWS CLI writes it), S3 virtual-hosted and path-style URLs on
// amazonaws.com (with and without region, legacy s3-REGION), GCS
// storage.googleapis.com, Azure ACCOUNT.blob.core.windows.net, and any
// other http(s) URL, left for matching against configured endpoints.
// http(s) paths are percent-decoded once.
func ParseStorageURL(raw string) (Location, error) {
	for _, p := range [...]struct{ scheme, provider string }{{"s3://", signer.ProviderS3}, {"gs://", signer.ProviderGCS}} {
		if rest, ok := cutPrefixFold(raw, p.scheme); ok {
			bucket, key, _ := strings.Cut(rest, "/")
			if bucket == "" {
				return Location{}, errStorageURL
			}
			if err := validateKey(key); err != nil {
				return Location{}, err
			}
			return Location{Provider: p.provider, Bucket: bucket, Key: key}, nil
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return Location{}, errStorageURL
	}
	path, err := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/"))
	if err != nil {
		return Location{}, errEscape
	}
	host := strings.ToLower(u.Host)
	hostname := strings.ToLower(u.Hostname())
	loc := Location{Host: host, Scheme: u.Scheme}
	switch {
	case strings.HasSuffix(hostname, ".amazonaws.com"):
		loc.Provider = signer.ProviderS3
		labels := strings.Split(strings.TrimSuffix(hostname, ".amazonaws.com"), ".")
		i := len(labels) - 1
		for ; i >= 0; i-- {
			if labels[i] == "s3" || strings.HasPrefix(labels[i], "s3-") {
				break
			}
		}
		if i < 0 {
			return Location{}, errStorageURL
		}
		if i == 0 { // path-style: s3[.REGION].amazonaws.com/BUCKET/KEY
			loc.Bucket, loc.Key, _ = strings.Cut(path, "/")
		} else { // virtual-hosted: BUCKET.s3[.REGION].amazonaws.com/KEY
			loc.Bucket, loc.Key = strings.Join(labels[:i], "."), path
		}
	case hostname == "storage.googleapis.com" || hostname == "storage.cloud.google.com":
		loc.Provider = signer.ProviderGCS
		loc.Bucket, loc.Key, _ = strings.Cut(path, "/")
	case strings.HasSuffix(hostname, ".storage.googleapis.com"):
		loc.Provider = signer.ProviderGCS
		loc.Bucket, loc.Key = strings.TrimSuffix(hostname, ".storage.googleapis.com"), path
	case strings.HasSuffix(hostname, ".blob.core.windows.net"):
		loc.Provider = signer.ProviderAzure
		loc.Account = strings.TrimSuffix(hostname, ".blob.core.windows.net")
		loc.Bucket, loc.Key, _ = strings.Cut(path, "/")
	default:
		loc.Path = path
		if strings.IndexByte(path, 0) >= 0 {
			return Location{}, errNUL
		}
		return loc, nil
	}
	if loc.Bucket == "" {
		return Location{}, errStorageURL
	}
	if err := validateKey(loc.Key); err != nil {
		return Location{}, err
	}
	return loc, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// resolveLocation finds the configured source that holds loc, and the key
// relative to that source's prefix. Among sources of one bucket the one
// with the longest matching prefix wins, and among equal prefixes the one
// listed first in the config (never the map's random order). nil: no
// source, answer 404.
func (s *Server) resolveLocation(loc Location) (*Source, string) {
	var best *Source
	var bestKey string
	consider := func(src *Source, key string) {
		if validateKey(key) != nil {
			return
		}
		rel, ok := strings.CutPrefix(key, src.Prefix)
		if !ok || rel == "" {
			return
		}
		if best == nil || len(src.Prefix) > len(best.Prefix) {
			best, bestKey = src, rel
		}
	}
	set := s.sources()
	if loc.Provider != "" {
		k := bucketKey{provider: loc.Provider, bucket: loc.Bucket}
		if loc.Provider == signer.ProviderAzure {
			k.account = loc.Account
		}
		for _, src := range set.byBucket[k] {
			if loc.Host != "" && src.cfg.Endpoint != "" && src.endpointHost != loc.Host {
				// an https URL on the cloud's own host names the cloud's
				// bucket, not a same-named bucket on a custom endpoint
				continue
			}
			consider(src, loc.Key)
		}
		return best, bestKey
	}
	// An http(s) URL on another host: path-style or virtual-hosted on a
	// source's custom endpoint.
	for _, src := range set.byHost[loc.Host] {
		if loc.Host == src.endpointHost {
			p, ok := strings.CutPrefix(loc.Path, src.endpointPath)
			if !ok {
				continue
			}
			if key, ok := strings.CutPrefix(p, src.cfg.Bucket+"/"); ok {
				consider(src, key)
			}
		} else if loc.Host == src.virtualHost {
			consider(src, loc.Path)
		}
	}
	return best, bestKey
}

package signer

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/singleflight"
)

// CredentialMargin is how long before its credentials expire a presigned
// URL stops working: URLs signed with temporary credentials die with them
// (the SDKs' long-standing "24 h URL dead after 1 h" surprise), so the edge
// caps each URL at the credentials' expiry minus this margin, which also
// absorbs clock skew between the edge and the store.
const CredentialMargin = 5 * time.Minute

// CredentialRefresh is how long before the cap (expiry minus
// CredentialMargin) expiring credentials are replaced. Refreshing only at
// the cap would sign URLs with seconds left just before each refresh;
// refreshing this much earlier signs every URL with at least this long to
// live.
const CredentialRefresh = 5 * time.Minute

// credentialRetry is how long after a failed fetch the next one is tried:
// meanwhile the old credentials sign while they are usable, and when they
// are not, requests fail at once (503) instead of each waiting out the
// SDK's retries against an STS that is down.
const credentialRetry = 10 * time.Second

// S3 presigns URLs for an S3 bucket or an S3-compatible store (versitygw,
// MinIO, R2, GCS interop) with the SDK's SigV4 presigner, at a signing time
// chosen by the caller.
type S3 struct {
	bucket string
	region string
	scheme string
	host   string // the bucket's host: the endpoint's, or BUCKET.endpoint for virtual-hosted
	// path is the URL path before the key: "/" (virtual-hosted) or
	// "/BUCKET/", after an endpoint's own base path; rawPath is it escaped.
	path, rawPath string
	creds         *credentialCache
	now           func() time.Time
	signer        *v4.Signer // list URLs (list_s3.go)
	sigv4         *SigV4     // object URLs: the SDK's output, byte for byte, at a tenth of the cost
	sse           *sseC
}

type sseC struct{ key, keyMD5 string }

// S3Options are what the S3 signer takes from outside its config.
type S3Options struct {
	// HTTPClient is used for STS and credential endpoints; nil = SDK default.
	HTTPClient aws.HTTPClient
	// Now judges credential expiry and freshness; nil = time.Now. New
	// sets it to Options.Now, the clock the caller's signing times come
	// from.
	Now func() time.Time
}

// NewS3 builds the signer for one s3 source (or a gcs source with hmac
// credentials, signed through GCS's S3-compatible interop endpoint).
func NewS3(ctx context.Context, cfg Config, opts S3Options) (*S3, error) {
	region, endpoint, pathStyle := cfg.Region, cfg.Endpoint, cfg.PathStyle()
	if cfg.Provider == ProviderGCS {
		// GCS interop takes SigV4, path-style, with region "auto" (any
		// region in fact); an S3-compatible stand-in such as versitygw
		// checks its own, so a configured region wins.
		pathStyle = true
		if region == "" {
			region = "auto"
		}
		if endpoint == "" {
			endpoint = "https://storage.googleapis.com"
		}
	}
	if region == "" {
		region = "us-east-1"
	}
	provider, err := credentialsProvider(ctx, cfg.Credentials, region, opts)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	creds := &credentialCache{provider: provider, now: now}
	s := &S3{
		bucket: cfg.Bucket,
		region: region,
		creds:  creds,
		now:    now,
		signer: v4.NewSigner(func(o *v4.SignerOptions) {
			o.DisableURIPathEscaping = true // S3 does not double-escape paths
		}),
	}
	if err := s.setBase(endpoint, pathStyle); err != nil {
		return nil, err
	}
	if cfg.SSECKey != "" {
		raw, err := base64.StdEncoding.DecodeString(cfg.SSECKey) // checked by Validate; decoded once here
		if err != nil {
			return nil, errors.New("sse_c_key: want base64 of exactly 32 bytes")
		}
		sum := md5.Sum(raw)
		s.sse = &sseC{key: cfg.SSECKey, keyMD5: base64.StdEncoding.EncodeToString(sum[:])}
	}
	v := SigV4Config{Scheme: s.scheme, Host: s.host, Path: s.path, Region: s.region}
	if s.sse != nil {
		v.SSECKey, v.SSECKeyMD5 = s.sse.key, s.sse.keyMD5
	}
	s.sigv4 = NewSigV4(v)
	return s, nil
}

// CredentialsProvider is the credential chain an s3 source (or a gcs one
// with hmac keys) signs with: static keys, the default chain, assume_role
// or web_identity, as NewS3 builds it. It is for callers that send their
// own S3 requests as the source (edge check's listing), so that they act
// with the very identity the signer does.
func CredentialsProvider(ctx context.Context, cfg Config, opts S3Options) (aws.CredentialsProvider, error) {
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
		if cfg.Provider == ProviderGCS {
			region = "auto"
		}
	}
	return credentialsProvider(ctx, cfg.Credentials, region, opts)
}

// credentialsProvider builds the provider chain of one source.
func credentialsProvider(ctx context.Context, c Credentials, region string, opts S3Options) (aws.CredentialsProvider, error) {
	static := func() aws.CredentialsProvider {
		if c.AccessKeyID == "" {
			return nil
		}
		return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	}
	switch c.Type {
	case "static", "hmac":
		return static(), nil
	case "default", "assume_role", "web_identity":
	default:
		return nil, errors.New("credentials.type: unknown type")
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if opts.HTTPClient != nil {
		loadOpts = append(loadOpts, awsconfig.WithHTTPClient(opts.HTTPClient))
	}
	if p := static(); p != nil {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(p))
	}
	base, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS config: %w", err)
	}
	if c.Type == "default" {
		return base.Credentials, nil
	}
	stsRegion := c.STSRegion
	if stsRegion == "" {
		stsRegion = region
	}
	stsClient := sts.NewFromConfig(base, func(o *sts.Options) {
		o.Region = stsRegion
		if c.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.STSEndpoint)
		}
	})
	sessionName := c.SessionName
	if sessionName == "" {
		sessionName = "edge"
	}
	if c.Type == "web_identity" {
		if _, err := os.Stat(c.WebIdentityToken); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the cause; the path is the operator's value
			}
			return nil, fmt.Errorf("credentials.web_identity_token_file: %w", err)
		}
		return stscreds.NewWebIdentityRoleProvider(stsClient, c.RoleARN, stscreds.IdentityTokenFile(c.WebIdentityToken),
			func(o *stscreds.WebIdentityRoleOptions) {
				o.RoleSessionName = sessionName
				if c.Duration > 0 {
					o.Duration = c.Duration
				}
			}), nil
	}
	return stscreds.NewAssumeRoleProvider(stsClient, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = sessionName
		if c.ExternalID != "" {
			o.ExternalID = aws.String(c.ExternalID)
		}
		if c.Duration > 0 {
			o.Duration = c.Duration
		}
	}), nil
}

// credentialCache holds a source's credentials and replaces expiring ones
// CredentialMargin+CredentialRefresh before they expire, so every URL
// signed with them has at least CredentialRefresh to live. Unlike
// aws.CredentialsCache it keeps the true expiry (the cap needs it), takes
// a clock, and keeps signing with the old credentials while a refresh
// fails and they still have more than CredentialMargin left.
type credentialCache struct {
	provider aws.CredentialsProvider
	now      func() time.Time
	cur      atomic.Pointer[cachedCredentials]
	failed   atomic.Pointer[credentialFailure] // the last fetch's error, until retry
	flight   singleflight.Group
}

type credentialFailure struct {
	err   error
	retry time.Time
}

type cachedCredentials struct {
	creds     aws.Credentials
	fetched   time.Time // when they arrived, UTC, whole seconds
	refreshAt time.Time // when to fetch new ones; unused unless creds.CanExpire
	usableTo  time.Time // Expires - CredentialMargin: no URL may outlive it
}

func (c *cachedCredentials) fresh(now time.Time) bool {
	return !c.creds.CanExpire || now.Before(c.refreshAt)
}

// Retrieve implements aws.CredentialsProvider.
func (c *credentialCache) Retrieve(ctx context.Context) (aws.Credentials, error) {
	cc, err := c.get(ctx)
	if err != nil {
		return aws.Credentials{}, err
	}
	return cc.creds, nil
}

// get returns the cached credentials, or new ones when they are due.
// Concurrent refreshes collapse into one, which runs detached from the
// caller's context.
func (c *credentialCache) get(ctx context.Context) (*cachedCredentials, error) {
	cur := c.cur.Load()
	if cur != nil && !cur.creds.CanExpire {
		return cur, nil // static keys: no clock to read
	}
	now := c.now()
	if cur != nil && cur.fresh(now) {
		return cur, nil
	}
	if f := c.failed.Load(); f != nil && now.Before(f.retry) {
		return nil, f.err
	}
	ch := c.flight.DoChan("", func() (any, error) {
		now := c.now()
		cur := c.cur.Load()
		if cur != nil && cur.fresh(now) {
			return cur, nil
		}
		if f := c.failed.Load(); f != nil && now.Before(f.retry) {
			return nil, f.err
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		creds, err := c.provider.Retrieve(fctx)
		if err != nil {
			if cur != nil && now.Before(cur.usableTo) {
				// An STS hiccup during the refresh lead is not an outage:
				// sign with the old credentials, try again shortly.
				retry := *cur
				retry.refreshAt = now.Add(credentialRetry)
				if retry.refreshAt.After(cur.usableTo) {
					retry.refreshAt = cur.usableTo
				}
				c.cur.Store(&retry)
				return &retry, nil
			}
			c.failed.Store(&credentialFailure{err: err, retry: now.Add(credentialRetry)})
			return nil, err
		}
		c.failed.Store(nil)
		next := &cachedCredentials{creds: creds, fetched: c.now().UTC().Truncate(time.Second)}
		if creds.CanExpire {
			next.usableTo = creds.Expires.Add(-CredentialMargin)
			// Refresh ahead of the cap, but never sooner than half the
			// credentials' life from now: credentials shorter than
			// margin and lead must not be fetched again on every request.
			lead := min(CredentialMargin+CredentialRefresh, creds.Expires.Sub(now)/2)
			next.refreshAt = creds.Expires.Add(-lead)
		}
		c.cur.Store(next)
		return next, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*cachedCredentials), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Presign implements Signer.
func (s *S3) Presign(ctx context.Context, r Request) (Presigned, error) {
	if err := CheckTTL(r.TTL); err != nil {
		return Presigned{}, fmt.Errorf("presign: %w", err)
	}
	cc, err := s.creds.get(ctx)
	if err != nil {
		return Presigned{}, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	creds := cc.creds
	at := r.At.UTC().Truncate(time.Second)
	if creds.CanExpire && at.Before(cc.fetched) {
		// Never date a signature before its session existed: a window
		// that started earlier signs at the session's start instead,
		// the same instant for every URL of the session, so windowed
		// signing stays deterministic and X-Amz-Expires never exceeds
		// the session's own length.
		at = cc.fetched
	}
	expires := at.Add(r.TTL)
	if creds.CanExpire {
		// A URL never outlives the credentials that signed it: cap it
		// CredentialMargin before they expire.
		if limit := creds.Expires.Add(-CredentialMargin).UTC().Truncate(time.Second); limit.Before(expires) {
			expires = limit
		}
		if !expires.After(s.now()) {
			return Presigned{}, fmt.Errorf("%w: credentials expire at %s, within %s of now: a URL signed with them would be dead on arrival",
				ErrCredentials, creds.Expires.UTC().Format(time.RFC3339), CredentialMargin)
		}
	}
	ttl := expires.Sub(at)
	if ttl < time.Second {
		return Presigned{}, fmt.Errorf("%w: credentials expire before the signing window starts", ErrCredentials)
	}
	method := r.Method
	switch method {
	case http.MethodGet, http.MethodHead:
	case "":
		method = http.MethodGet
	default:
		return Presigned{}, fmt.Errorf("presign: method %q not supported", r.Method)
	}
	// SSE-C keys are signed headers, never hoisted into the query: the
	// key stays out of the URL (and so out of every log).
	sse := r.ForFetch && s.sse != nil
	signed := s.sigv4.Presign(&SigV4Request{
		Method: method, Key: r.Key, At: at, Expires: int64(ttl / time.Second),
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
		SSEC: sse,
	})
	p := presigned(r, signed, expires)
	if r.ForFetch {
		p.Header = http.Header{}
		if sse {
			p.Header = s.sigv4.SSECHeaders()
		}
	}
	return p, nil
}

// setBase works out the URL every key is appended to, once: the
// endpoint (or AWS's regional one), path-style or virtual-hosted.
func (s *S3) setBase(endpoint string, pathStyle bool) error {
	if endpoint == "" {
		suffix := "amazonaws.com"
		if strings.HasPrefix(s.region, "cn-") {
			suffix = "amazonaws.com.cn"
		}
		endpoint = "https://s3." + s.region + "." + suffix
	}
	u, err := url.Parse(endpoint) // checked by Validate
	if err != nil || u.Host == "" {
		return errors.New("endpoint: want an absolute http(s) URL")
	}
	s.scheme, s.host = u.Scheme, u.Host
	base := strings.TrimSuffix(u.Path, "/")
	if pathStyle {
		s.path = base + "/" + s.bucket + "/"
	} else {
		s.host = s.bucket + "." + u.Host
		s.path = base + "/"
	}
	s.rawPath = EscapePath(s.path)
	return nil
}

// Check resolves the credentials, and checks they can still sign a URL
// that lives: /readyz and edge check report it.
func (s *S3) Check(ctx context.Context) error {
	cc, err := s.creds.get(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	if cc.creds.CanExpire && !s.now().Before(cc.usableTo) {
		return fmt.Errorf("%w: credentials expire at %s, within %s of now",
			ErrCredentials, cc.creds.Expires.UTC().Format(time.RFC3339), CredentialMargin)
	}
	return nil
}

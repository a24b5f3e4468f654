package signer

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// CredentialMargin is how long before its credentials expire a presigned
// URL stops being handed out: URLs signed with temporary credentials die
// with them, so the edge caps each URL at the credentials' expiry minus
// this margin and refreshes the credentials that much ahead.
const CredentialMargin = 5 * time.Minute

// S3 presigns URLs for an S3 bucket or an S3-compatible store (versitygw,
// MinIO, R2, GCS interop) with the SDK's SigV4 presigner, at a signing time
// chosen by the caller.
type S3 struct {
	bucket  string
	creds   aws.CredentialsProvider
	presign *s3.PresignClient
	sse     *sseC
}

type sseC struct{ key, keyMD5 string }

// S3Options are what the S3 signer takes from outside its config.
type S3Options struct {
	// HTTPClient is used for STS and credential endpoints; nil = SDK default.
	HTTPClient aws.HTTPClient
}

// NewS3 builds the signer for one s3 source (or a gcs source with hmac
// credentials, signed through GCS's S3-compatible interop endpoint).
func NewS3(ctx context.Context, cfg Config, opts S3Options) (*S3, error) {
	region, endpoint, pathStyle := cfg.Region, cfg.Endpoint, cfg.PathStyle()
	if cfg.Provider == ProviderGCS {
		// GCS interop accepts SigV4 with region "auto", path-style.
		region, pathStyle = "auto", true
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
	creds := aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = CredentialMargin
	})
	client := s3.New(s3.Options{
		Region:       region,
		Credentials:  creds,
		UsePathStyle: pathStyle,
		HTTPClient:   opts.HTTPClient,
		BaseEndpoint: optional(endpoint),
	})
	s := &S3{
		bucket: cfg.Bucket,
		creds:  creds,
		presign: s3.NewPresignClient(client, func(o *s3.PresignOptions) {
			o.Presigner = fixedTimePresigner{v4.NewSigner(func(o *v4.SignerOptions) {
				o.DisableURIPathEscaping = true // S3 does not double-escape paths
			})}
		}),
	}
	if cfg.SSECKey != "" {
		raw, err := base64.StdEncoding.DecodeString(cfg.SSECKey)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("sse_c_key: want base64 of exactly 32 bytes")
		}
		sum := md5.Sum(raw)
		s.sse = &sseC{key: cfg.SSECKey, keyMD5: base64.StdEncoding.EncodeToString(sum[:])}
	}
	return s, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
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
		return nil, fmt.Errorf("credentials.type: unknown type %q", c.Type)
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
		o.BaseEndpoint = optional(c.STSEndpoint)
	})
	sessionName := c.SessionName
	if sessionName == "" {
		sessionName = "edge"
	}
	if c.Type == "web_identity" {
		if _, err := os.Stat(c.WebIdentityToken); err != nil {
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

type signingTimeKey struct{}

// fixedTimePresigner signs at the time the caller put in the context
// instead of the SDK's wall clock, which is what makes windowed signing
// deterministic.
type fixedTimePresigner struct{ s *v4.Signer }

func (p fixedTimePresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request,
	payloadHash, service, region string, signingTime time.Time, optFns ...func(*v4.SignerOptions),
) (string, http.Header, error) {
	if t, ok := ctx.Value(signingTimeKey{}).(time.Time); ok {
		signingTime = t
	}
	return p.s.PresignHTTP(ctx, creds, r, payloadHash, service, region, signingTime, optFns...)
}

// Presign implements Signer.
func (s *S3) Presign(ctx context.Context, r Request) (Presigned, error) {
	if r.TTL <= 0 || r.TTL > MaxTTL {
		return Presigned{}, fmt.Errorf("presign: ttl %s outside (0, %s]", r.TTL, MaxTTL)
	}
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return Presigned{}, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	at := r.At.UTC().Truncate(time.Second)
	expires := at.Add(r.TTL)
	if creds.CanExpire && creds.Expires.Before(expires) {
		// A URL never outlives the credentials that signed it: cap it.
		// The cache's ExpiryWindow already took CredentialMargin off.
		expires = creds.Expires.Truncate(time.Second)
	}
	ttl := expires.Sub(at)
	if ttl < time.Second {
		return Presigned{}, fmt.Errorf("%w: credentials expire before the signing window starts", ErrCredentials)
	}
	ctx = context.WithValue(ctx, signingTimeKey{}, at)
	withTTL := func(o *s3.PresignOptions) { o.Expires = ttl }
	var out *v4.PresignedHTTPRequest
	switch r.Method {
	case http.MethodGet, "":
		in := &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(r.Key)}
		if r.ForFetch && s.sse != nil {
			in.SSECustomerAlgorithm = aws.String("AES256")
			in.SSECustomerKey = aws.String(s.sse.key)
			in.SSECustomerKeyMD5 = aws.String(s.sse.keyMD5)
		}
		out, err = s.presign.PresignGetObject(ctx, in, withTTL)
	case http.MethodHead:
		in := &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(r.Key)}
		if r.ForFetch && s.sse != nil {
			in.SSECustomerAlgorithm = aws.String("AES256")
			in.SSECustomerKey = aws.String(s.sse.key)
			in.SSECustomerKeyMD5 = aws.String(s.sse.keyMD5)
		}
		out, err = s.presign.PresignHeadObject(ctx, in, withTTL)
	default:
		return Presigned{}, fmt.Errorf("presign: method %q not supported", r.Method)
	}
	if err != nil {
		return Presigned{}, fmt.Errorf("presign: %w", err)
	}
	p := Presigned{URL: out.URL, Expires: expires}
	if r.ForFetch {
		p.Header = out.SignedHeader.Clone()
		p.Header.Del("Host")
	}
	return p, nil
}

// Check resolves the credentials once: /readyz and edge check report it.
func (s *S3) Check(ctx context.Context) error {
	if _, err := s.creds.Retrieve(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	return nil
}

// RequiresFetch reports whether the source can only be fetched by the edge
// itself (SSE-C: a browser cannot send the key).
func (s *S3) RequiresFetch() bool { return s.sse != nil }

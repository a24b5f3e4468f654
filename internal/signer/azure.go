package signer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"golang.org/x/sync/singleflight"
)

// Azure credential types.
const (
	AzureSharedKey = "shared_key"
	AzureDefault   = "default"
)

const (
	// azureClockSkew backdates every SAS start (and delegation key start) so
	// a storage front end whose clock runs a little behind ours does not see
	// a not-yet-valid signature.
	azureClockSkew = 5 * time.Minute
	// azureKeyLifetime is how long a requested user delegation key lives.
	// The service allows up to 7 days; a day keeps a leaked process's keys
	// short-lived while costing one key request per half day.
	azureKeyLifetime = 24 * time.Hour
	// azureKeyRefresh is how much lifetime a cached delegation key must have
	// left to be used for new URLs. With half the lifetime in reserve, every
	// URL with a TTL up to 12h is signed for its full TTL.
	azureKeyRefresh = 12 * time.Hour
	// azureKeyFetchTimeout bounds one shared key fetch, which outlives the
	// request that started it (see delegationKey).
	azureKeyFetchTimeout = 30 * time.Second
)

// blobPermRead is the SAS permission string for reading a blob; GET and HEAD
// (Get Blob, Get Blob Properties) both need only r.
var blobPermRead = (&sas.BlobPermissions{Read: true}).String()

// Azure presigns Azure Blob Storage URLs as read-only service SAS for one
// container: signed with the account key (shared_key), or user-delegation
// SAS signed with a key obtained through the Entra ID identity the edge runs
// as (default).
type Azure struct {
	account   string
	container string
	// prefix is "{endpoint}/{container}/", built once: every URL starts
	// with it.
	prefix   string
	protocol sas.Protocol
	now      func() time.Time

	shared *azblob.SharedKeyCredential // shared_key

	svc *service.Client // default
	sf  singleflight.Group
	mu  sync.RWMutex
	key *azureDelegationKey // default: the cached key, nil until fetched
}

// azureDelegationKey is a user delegation key and its validity, kept so the
// signer never asks the credential for it.
type azureDelegationKey struct {
	cred          *service.UserDelegationCredential
	start, expiry time.Time
}

// azureOptions are the seams tests use; NewAzure passes the zero value.
type azureOptions struct {
	// cred replaces azidentity's DefaultAzureCredential for type default.
	cred azcore.TokenCredential
	// transport carries the delegation key requests (nil: the SDK's).
	transport policy.Transporter
	// now is the clock for delegation key refresh decisions (nil: time.Now).
	now func() time.Time
}

// NewAzure returns the signer for an azure source. For credential type
// default it builds the credential chain but does not call it yet: Check, or
// the first Presign, fetches the delegation key. now is the clock that
// judges the delegation key's freshness (nil = time.Now): the one the
// caller's signing times come from.
func NewAzure(cfg Config, now func() time.Time) (*Azure, error) {
	return newAzure(cfg, azureOptions{now: now})
}

func newAzure(cfg Config, o azureOptions) (*Azure, error) {
	if cfg.Credentials.Type == "" {
		cfg.Credentials.Type = AzureSharedKey
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("azure: "+format, args...)) }
	if cfg.Account == "" {
		bad("account: required")
	} else if strings.ContainsAny(cfg.Account, "/?#.: ") {
		bad("account: %q is not a storage account name", cfg.Account)
	}
	if cfg.Bucket == "" {
		bad("bucket: required (the container)")
	} else if strings.ContainsAny(cfg.Bucket, "/?#% ") {
		bad("bucket: %q is not a container name", cfg.Bucket)
	}
	endpoint := "https://" + cfg.Account + ".blob.core.windows.net"
	var ep *url.URL
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("endpoint: want an absolute http(s) URL, got %q", cfg.Endpoint)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			bad("endpoint: %q must not carry a query, fragment or user info", cfg.Endpoint)
		default:
			ep = u
			endpoint = strings.TrimRight(cfg.Endpoint, "/")
		}
	}
	switch cfg.Credentials.Type {
	case AzureSharedKey:
		if cfg.Credentials.AccountKey == "" {
			bad("credentials.account_key: required for shared_key")
		} else if _, err := base64.StdEncoding.DecodeString(cfg.Credentials.AccountKey); err != nil {
			bad("credentials.account_key: not base64")
		}
	case AzureDefault:
	default:
		bad("credentials.type: unknown type %q: want shared_key or default", cfg.Credentials.Type)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	a := &Azure{
		account:   cfg.Account,
		container: cfg.Bucket,
		prefix:    endpoint + "/" + cfg.Bucket + "/",
		protocol:  sas.ProtocolHTTPS,
		now:       o.now,
	}
	if a.now == nil {
		a.now = time.Now
	}
	// Azurite speaks plain HTTP; a SAS restricted to HTTPS would be refused.
	if ep != nil && ep.Scheme == "http" {
		a.protocol = sas.ProtocolHTTPSandHTTP
	}

	switch cfg.Credentials.Type {
	case AzureSharedKey:
		cred, err := azblob.NewSharedKeyCredential(cfg.Account, cfg.Credentials.AccountKey)
		if err != nil {
			return nil, fmt.Errorf("azure: credentials.account_key: %w", err)
		}
		a.shared = cred
	case AzureDefault:
		cred := o.cred
		if cred == nil {
			c, err := azidentity.NewDefaultAzureCredential(nil)
			if err != nil {
				return nil, fmt.Errorf("azure: default credential: %v: %w", err, ErrCredentials)
			}
			cred = c
		}
		svc, err := newDelegationClient(cfg.Account, endpoint, ep, cred, o.transport)
		if err != nil {
			return nil, fmt.Errorf("azure: service client: %w", err)
		}
		a.svc = svc
	}
	return a, nil
}

// newDelegationClient returns the service client that fetches user
// delegation keys. service.Client.GetUserDelegationCredential takes the
// account name from the first label of the client URL's host, which is
// wrong for path-style endpoints such as Azurite's
// http://127.0.0.1:10000/devstoreaccount1 (it would sign for account "127").
// For those the client is given the account's cloud URL, and a per-call
// policy sends each request to the configured endpoint instead.
func newDelegationClient(account, endpoint string, ep *url.URL, cred azcore.TokenCredential, transport policy.Transporter) (*service.Client, error) {
	opts := &service.ClientOptions{}
	opts.Transport = transport
	serviceURL := endpoint + "/"
	if ep != nil && !strings.HasPrefix(ep.Hostname(), account+".") {
		serviceURL = "https://" + account + ".blob.core.windows.net/"
		opts.PerCallPolicies = []policy.Policy{azureEndpointPolicy{scheme: ep.Scheme, host: ep.Host, path: strings.TrimRight(ep.Path, "/")}}
	}
	// Bearer tokens over plain HTTP only to a loopback emulator.
	if ep != nil && ep.Scheme == "http" && azureLoopback(ep.Hostname()) {
		opts.InsecureAllowCredentialWithHTTP = true
	}
	return service.NewClient(serviceURL, cred, opts)
}

// azureEndpointPolicy redirects a request built for https://ACCOUNT.blob.core.windows.net/PATH
// to scheme://host/path/PATH.
type azureEndpointPolicy struct{ scheme, host, path string }

func (p azureEndpointPolicy) Do(req *policy.Request) (*http.Response, error) {
	u := req.Raw().URL
	u.Scheme, u.Host = p.scheme, p.host
	u.Path = p.path + u.Path
	if u.RawPath != "" {
		u.RawPath = p.path + u.RawPath
	}
	req.Raw().Host = p.host
	return req.Next()
}

func azureLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Presign returns a read-only SAS URL for r.Key, valid for GET and HEAD from
// r.At minus a clock-skew allowance until r.At+r.TTL (shortened to the
// delegation key's expiry for type default). The same Request, and for type
// default the same cached delegation key, always gives the same URL.
func (a *Azure) Presign(ctx context.Context, r Request) (Presigned, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, "":
	default:
		return Presigned{}, fmt.Errorf("azure: method %s: a read SAS serves only GET and HEAD", r.Method)
	}
	if r.Key == "" {
		return Presigned{}, errors.New("azure: empty blob name")
	}
	if err := CheckTTL(r.TTL); err != nil {
		return Presigned{}, fmt.Errorf("azure: %w", err)
	}
	ttl := r.TTL
	if r.At.IsZero() {
		r.At = a.now().Truncate(time.Second)
	}
	// SAS times have one-second resolution; truncating here makes Expires
	// the instant the service enforces.
	at := r.At.UTC().Truncate(time.Second)
	v := sas.BlobSignatureValues{
		Protocol:      a.protocol,
		StartTime:     at.Add(-azureClockSkew),
		ExpiryTime:    at.Add(ttl),
		Permissions:   blobPermRead,
		ContainerName: a.container,
		BlobName:      r.Key,
	}
	var (
		qp  sas.QueryParameters
		err error
	)
	if a.shared != nil {
		qp, err = v.SignWithSharedKey(a.shared)
	} else {
		var k *azureDelegationKey
		k, err = a.delegationKey(ctx)
		if err != nil {
			return Presigned{}, err
		}
		// A user delegation SAS must lie within its key's validity.
		if v.StartTime.Before(k.start) {
			v.StartTime = k.start
		}
		if v.ExpiryTime.After(k.expiry) {
			v.ExpiryTime = k.expiry
		}
		if !v.ExpiryTime.After(v.StartTime) {
			// Only a request whose URL would have expired before the key
			// was issued gets here; the edge never signs one.
			return Presigned{}, fmt.Errorf("azure: delegation key valid %s to %s cannot sign for %s to %s",
				k.start.Format(time.RFC3339), k.expiry.Format(time.RFC3339), at.Format(time.RFC3339), at.Add(ttl).Format(time.RFC3339))
		}
		qp, err = v.SignWithUserDelegation(k.cred)
	}
	if err != nil {
		return Presigned{}, fmt.Errorf("azure: sign: %w", err)
	}
	q := qp.Encode()
	var b strings.Builder
	b.Grow(len(a.prefix) + 3*len(r.Key) + 1 + len(q))
	b.WriteString(a.prefix)
	b.WriteString(EscapePath(r.Key))
	b.WriteByte('?')
	b.WriteString(q)
	return presigned(r, b.String(), v.ExpiryTime), nil
}

// Check resolves the credentials: for type default it obtains a user
// delegation key (and keeps it for Presign), for shared_key it checks that
// the account key decodes. Failures wrap ErrCredentials.
func (a *Azure) Check(ctx context.Context) error {
	if a.shared != nil {
		// NewAzure refused keys that do not decode; signing a probe proves
		// the credential computes signatures at all.
		now := a.now()
		probe := sas.BlobSignatureValues{ExpiryTime: now.Add(time.Minute), Permissions: blobPermRead, ContainerName: a.container, BlobName: "probe"}
		if _, err := probe.SignWithSharedKey(a.shared); err != nil {
			return fmt.Errorf("azure: account key: %v: %w", err, ErrCredentials)
		}
		return nil
	}
	_, err := a.delegationKey(ctx)
	return err
}

// delegationKey returns a cached user delegation key with at least
// azureKeyRefresh of its lifetime left, fetching a new one when needed.
// Concurrent misses share one fetch, which runs on its own deadline so one
// caller going away does not fail the others. When a refresh fails, a cached
// key that has not expired yet is still used.
func (a *Azure) delegationKey(ctx context.Context) (*azureDelegationKey, error) {
	now := a.now()
	a.mu.RLock()
	k := a.key
	a.mu.RUnlock()
	if k != nil && now.Add(azureKeyRefresh).Before(k.expiry) {
		return k, nil
	}
	ch := a.sf.DoChan("udk", func() (any, error) {
		now := a.now()
		// Another flight may have stored a fresh key meanwhile.
		a.mu.RLock()
		k := a.key
		a.mu.RUnlock()
		if k != nil && now.Add(azureKeyRefresh).Before(k.expiry) {
			return k, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), azureKeyFetchTimeout)
		defer cancel()
		nk, err := a.fetchKey(fctx, now)
		if err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.key = nk
		a.mu.Unlock()
		return nk, nil
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("azure: user delegation key: %w", ctx.Err())
	}
	if res.Err != nil {
		if k != nil && now.Before(k.expiry.Add(-time.Minute)) {
			return k, nil
		}
		return nil, res.Err
	}
	return res.Val.(*azureDelegationKey), nil
}

// fetchKey asks the service for a user delegation key valid from the start
// of the current hour (less the skew allowance) for azureKeyLifetime. Keys
// requested in the same hour by several replicas share their validity
// window, so the URLs they sign differ only if the service's keys do.
func (a *Azure) fetchKey(ctx context.Context, now time.Time) (*azureDelegationKey, error) {
	start := now.UTC().Truncate(time.Hour).Add(-azureClockSkew)
	expiry := start.Add(azureKeyLifetime)
	st, se := start.Format(sas.TimeFormat), expiry.Format(sas.TimeFormat)
	cred, err := a.svc.GetUserDelegationCredential(ctx, service.KeyInfo{Start: &st, Expiry: &se}, nil)
	if err != nil {
		return nil, fmt.Errorf("azure: get user delegation key for account %s: %v: %w", a.account, err, ErrCredentials)
	}
	// The credential hides the validity the service granted; a probe
	// signature reveals it (and proves the key value decodes).
	probe := sas.BlobSignatureValues{ExpiryTime: expiry, Permissions: blobPermRead, ContainerName: a.container, BlobName: "probe"}
	qp, err := signDelegationProbe(probe, cred)
	if err != nil {
		return nil, fmt.Errorf("azure: user delegation key for account %s: %v: %w", a.account, err, ErrCredentials)
	}
	k := &azureDelegationKey{cred: cred, start: qp.SignedStart().UTC(), expiry: qp.SignedExpiry().UTC()}
	if !k.expiry.After(now) {
		return nil, fmt.Errorf("azure: user delegation key for account %s expired at %s: %w", a.account, k.expiry.Format(time.RFC3339), ErrCredentials)
	}
	return k, nil
}

// signDelegationProbe signs v with cred, turning the SDK's nil-pointer panic on a key
// response that lacks a field into an error: a key that passes here signs
// every later URL without panicking.
func signDelegationProbe(v sas.BlobSignatureValues, cred *service.UserDelegationCredential) (qp sas.QueryParameters, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("incomplete user delegation key in the service's answer")
		}
	}()
	return v.SignWithUserDelegation(cred)
}

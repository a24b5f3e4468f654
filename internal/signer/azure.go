package signer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
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

	shared *blob.SharedKeyCredential // shared_key

	// default: the identity, where and how its delegation keys are fetched.
	cred      azcore.TokenCredential
	keyURL    string // ENDPOINT/?restype=service&comp=userdelegationkey
	transport azureDoer
	// plainHTTPRemote: an http:// endpoint off loopback, where no bearer
	// token may go.
	plainHTTPRemote bool
	sf              singleflight.Group
	mu              sync.RWMutex
	key             *azureDelegationKey // the cached key, nil until fetched
}

// azureDoer sends one HTTP request (an *http.Client in production).
type azureDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// azureDelegationKey is a user delegation key as the service issued it:
// what a user delegation SAS signs with and names.
type azureDelegationKey struct {
	oid, tid, service, version string
	value                      []byte // the decoded key: the HMAC-SHA256 key of every SAS
	start, expiry              time.Time
	skt, ske                   string // start and expiry as the SAS carries them
}

// azureOptions are the seams tests use; NewAzure passes only the clock.
type azureOptions struct {
	// cred replaces azidentity's DefaultAzureCredential for type default.
	cred azcore.TokenCredential
	// transport carries the delegation key requests (nil: an http.Client).
	transport azureDoer
	// now is the clock for delegation key refresh decisions (nil: time.Now).
	now func() time.Time
}

// NewAzure returns the signer for an azure source; cfg must have passed
// Validate. For credential type
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
	// cfg passed Validate: the account, container, endpoint and key are
	// well formed.
	endpoint := "https://" + cfg.Account + ".blob.core.windows.net"
	var ep *url.URL
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return nil, errors.New("azure: endpoint: want an absolute http(s) URL")
		}
		ep = u
		endpoint = strings.TrimRight(cfg.Endpoint, "/")
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
		cred, err := blob.NewSharedKeyCredential(cfg.Account, cfg.Credentials.AccountKey)
		if err != nil {
			return nil, errors.New("azure: credentials.account_key: not base64")
		}
		a.shared = cred
	case AzureDefault:
		// Bearer tokens over plain HTTP only to a loopback emulator:
		// fetchKey refuses the others (503, as the SDK did).
		a.plainHTTPRemote = ep != nil && ep.Scheme == "http" && !azureLoopback(ep.Hostname())
		a.cred = o.cred
		if a.cred == nil {
			c, err := azidentity.NewDefaultAzureCredential(nil)
			if err != nil {
				return nil, fmt.Errorf("azure: default credential: %w: %w", err, ErrCredentials)
			}
			a.cred = c
		}
		a.keyURL = endpoint + "/?restype=service&comp=userdelegationkey"
		a.transport = o.transport
		if a.transport == nil {
			a.transport = &http.Client{Timeout: azureKeyFetchTimeout}
		}
	}
	return a, nil
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
		q := a.signUserDelegation(k, v.StartTime, v.ExpiryTime, blobPermRead, r.Key)
		return presigned(r, a.url(r.Key, q), v.ExpiryTime), nil
	}
	if err != nil {
		return Presigned{}, fmt.Errorf("azure: sign: %w", err)
	}
	return presigned(r, a.url(r.Key, qp.Encode()), v.ExpiryTime), nil
}

// url is the blob's URL with the SAS query q.
func (a *Azure) url(key, q string) string {
	var b strings.Builder
	b.Grow(len(a.prefix) + 3*len(key) + 1 + len(q))
	b.WriteString(a.prefix)
	b.WriteString(EscapePath(key))
	b.WriteByte('?')
	b.WriteString(q)
	return b.String()
}

// signUserDelegation returns the query of a read-only user delegation SAS
// for one blob, start to expiry, signed with k. It is the string to sign
// and the query of sas.BlobSignatureValues.SignWithUserDelegation for a
// blob resource with only Protocol, times and Permissions set
// (TestAzureUserDelegationMatchesSDK holds the two equal): the SDK builds
// that credential only from its service client, which links the whole
// container package (Apache Arrow among it), so the edge signs itself.
// https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas
func (a *Azure) signUserDelegation(k *azureDelegationKey, start, expiry time.Time, perm, blobName string) string {
	st, se := start.UTC().Format(sas.TimeFormat), expiry.UTC().Format(sas.TimeFormat)
	// An empty blob name signs for the container (a listing: sr=c).
	canonical, resource := "/blob/"+a.account+"/"+a.container, "c"
	if blobName != "" {
		canonical, resource = canonical+"/"+strings.ReplaceAll(blobName, "\\", "/"), "b"
	}
	stringToSign := strings.Join([]string{
		perm, st, se, canonical,
		k.oid, k.tid, k.skt, k.ske, k.service, k.version,
		"", "", "", // saoid, suoid, scid
		"", "", // skdutid, sduoid
		"", // sip
		string(a.protocol), sas.Version, resource,
		"", "", // snapshot time, ses
		"", "", // srh, srq
		"", "", "", "", "", // rscc, rscd, rsce, rscl, rsct
	}, "\n")
	m := hmac.New(sha256.New, k.value)
	m.Write([]byte(stringToSign))
	v := url.Values{
		"sv": {sas.Version}, "spr": {string(a.protocol)}, "st": {st}, "se": {se}, "sr": {resource}, "sp": {perm},
		"skoid": {k.oid}, "sktid": {k.tid}, "skt": {k.skt}, "ske": {k.ske}, "sks": {k.service}, "skv": {k.version},
		"sig": {base64.StdEncoding.EncodeToString(m.Sum(nil))},
	}
	return v.Encode()
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
//
// It is one Get User Delegation Key call, POST
// ENDPOINT/?restype=service&comp=userdelegationkey with a bearer token and a
// KeyInfo XML body: https://learn.microsoft.com/rest/api/storageservices/get-user-delegation-key
// Errors carry the storage error code (AuthenticationFailed, say), never
// the response body or the token.
func (a *Azure) fetchKey(ctx context.Context, now time.Time) (*azureDelegationKey, error) {
	start := now.UTC().Truncate(time.Hour).Add(-azureClockSkew)
	expiry := start.Add(azureKeyLifetime)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("azure: get user delegation key for account %s: %s: %w", a.account, fmt.Sprintf(format, args...), ErrCredentials)
	}
	if a.plainHTTPRemote {
		return nil, fail("endpoint: bearer tokens go over plain http only to loopback: want https")
	}
	tok, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
	if err != nil {
		return nil, fmt.Errorf("azure: get user delegation key for account %s: token: %w: %w", a.account, err, ErrCredentials)
	}
	body := `<?xml version="1.0" encoding="utf-8"?><KeyInfo><Start>` + start.Format(sas.TimeFormat) +
		`</Start><Expiry>` + expiry.Format(sas.TimeFormat) + `</Expiry></KeyInfo>`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.keyURL, strings.NewReader(body))
	if err != nil {
		return nil, fail("request: %v", err)
	}
	req.Header["Authorization"] = []string{"Bearer " + tok.Token}
	req.Header["X-Ms-Version"] = []string{sas.Version}
	// The request's own date, for the wire: the service's clock, not the
	// signer's, judges it.
	req.Header["X-Ms-Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
	req.Header["Content-Type"] = []string{"application/xml"}
	req.Header["Accept"] = []string{"application/xml"}
	resp, err := a.transport.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fail("%v", ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is known; keep the cause
		}
		return nil, fail("%v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fail("reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fail("HTTP %d %s", resp.StatusCode, azureErrorCode(resp.Header, raw))
	}
	k, err := parseDelegationKey(raw)
	if err != nil {
		return nil, fail("%v", err)
	}
	if !k.expiry.After(now) {
		return nil, fail("the key expired at %s", k.expiry.Format(time.RFC3339))
	}
	return k, nil
}

// azureErrorCode is the storage error code of a failed answer (the
// x-ms-error-code header, else the body's <Code>), reduced to the
// characters a code has; never the message, which can quote the request.
func azureErrorCode(h http.Header, body []byte) string {
	code := h.Get("X-Ms-Error-Code")
	if code == "" {
		var e struct {
			Code string `xml:"Code"`
		}
		if xml.Unmarshal(body, &e) == nil {
			code = e.Code
		}
	}
	if len(code) > 64 {
		code = code[:64]
	}
	clean := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, code)
	if clean == "" {
		return "(no error code)"
	}
	return clean
}

// parseDelegationKey reads a UserDelegationKey answer, refusing one that
// lacks a field a SAS needs or whose key does not decode.
func parseDelegationKey(raw []byte) (*azureDelegationKey, error) {
	var x struct {
		OID     string `xml:"SignedOid"`
		TID     string `xml:"SignedTid"`
		Start   string `xml:"SignedStart"`
		Expiry  string `xml:"SignedExpiry"`
		Service string `xml:"SignedService"`
		Version string `xml:"SignedVersion"`
		Value   string `xml:"Value"`
	}
	if err := xml.Unmarshal(raw, &x); err != nil {
		return nil, errors.New("the answer is not a UserDelegationKey document")
	}
	if x.OID == "" || x.TID == "" || x.Service == "" || x.Version == "" || x.Value == "" {
		return nil, errors.New("incomplete user delegation key in the service's answer")
	}
	start, err1 := time.Parse(time.RFC3339Nano, x.Start)
	expiry, err2 := time.Parse(time.RFC3339Nano, x.Expiry)
	if err1 != nil || err2 != nil {
		return nil, errors.New("user delegation key validity not RFC 3339 in the service's answer")
	}
	value, err := base64.StdEncoding.DecodeString(x.Value)
	if err != nil {
		return nil, errors.New("user delegation key value not base64 in the service's answer")
	}
	k := &azureDelegationKey{oid: x.OID, tid: x.TID, service: x.Service, version: x.Version, value: value,
		start: start.UTC(), expiry: expiry.UTC()}
	k.skt = k.start.Format(sas.TimeFormat)
	k.ske = k.expiry.Format(sas.TimeFormat)
	return k, nil
}

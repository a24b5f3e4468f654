package signer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/edgeproxy/edge/internal/testenv"
)

// azTestKey is a syntactically valid account key for tests that never reach
// a server (Azurite's well-known key lives in testenv).
var azTestKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))

// azTestAt is the fixed signing time of the known-answer tests.
var azTestAt = time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)

func azSharedKeyConfig(account, key, endpoint string) Config {
	return Config{
		Provider: ProviderAzure, Account: account, Bucket: "frames", Endpoint: endpoint,
		Credentials: Credentials{Type: AzureSharedKey, AccountKey: key},
	}
}

func TestAzureConfigErrors(t *testing.T) {
	ok := azSharedKeyConfig("acme", azTestKey, "")
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string // substrings of the error, each naming a key
	}{
		{"no account", func(c *Config) { c.Account = "" }, []string{"account: required"}},
		{"account with a dot", func(c *Config) { c.Account = "acme.evil" }, []string{"account:"}},
		{"no container", func(c *Config) { c.Bucket = "" }, []string{"bucket: required"}},
		{"container with a slash", func(c *Config) { c.Bucket = "a/b" }, []string{"bucket:"}},
		{"endpoint not a URL", func(c *Config) { c.Endpoint = "127.0.0.1:10000" }, []string{"endpoint:"}},
		{"endpoint ftp", func(c *Config) { c.Endpoint = "ftp://127.0.0.1/x" }, []string{"endpoint:"}},
		{"endpoint with query", func(c *Config) { c.Endpoint = "http://127.0.0.1:10000/a?sig=x" }, []string{"endpoint:"}},
		{"unknown type", func(c *Config) { c.Credentials.Type = "static" }, []string{"credentials.type:"}},
		{"shared key missing", func(c *Config) { c.Credentials.AccountKey = "" }, []string{"credentials.account_key: required"}},
		{"shared key not base64", func(c *Config) { c.Credentials.AccountKey = "not base64!" }, []string{"credentials.account_key: not base64"}},
		{"everything at once", func(c *Config) { *c = Config{Credentials: Credentials{Type: "x"}} },
			[]string{"account:", "bucket:", "credentials.type:"}},
		{"endpoint with user info", func(c *Config) { c.Endpoint = "https://acme:" + azTestKey + "@acme.blob.core.windows.net" }, []string{"endpoint: must not carry user information"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.modify(&cfg)
			cfg.Provider = ProviderAzure
			errs := cfg.Validate("s")
			if len(errs) == 0 {
				t.Fatalf("Validate(%+v) = nil; want an error", cfg)
			}
			err := errors.Join(errs...)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), cfg.Credentials.AccountKey) && cfg.Credentials.AccountKey != "" {
				t.Errorf("error %q leaks the account key", err)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		for _, cfg := range []Config{
			ok,
			azSharedKeyConfig("devstoreaccount1", azTestKey, "http://127.0.0.1:10000/devstoreaccount1/"),
			{Account: "acme", Bucket: "frames", Credentials: Credentials{AccountKey: azTestKey}}, // type defaults to shared_key
		} {
			if _, err := NewAzure(cfg, nil); err != nil {
				t.Errorf("NewAzure(%+v): %v", cfg, err)
			}
		}
		// Type default builds its credential chain without calling it.
		if _, err := newAzure(Config{Account: "acme", Bucket: "frames", Credentials: Credentials{Type: AzureDefault}},
			azureOptions{cred: &azFakeToken{}}); err != nil {
			t.Errorf("newAzure(default): %v", err)
		}
	})
}

func TestAzurePresignShape(t *testing.T) {
	s, err := NewAzure(azSharedKeyConfig("acme", azTestKey, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := Request{Method: http.MethodGet, Key: "cats/1.jpg", At: azTestAt, TTL: time.Hour}
	p, err := s.Presign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.EscapedPath(), "https://acme.blob.core.windows.net/frames/cats/1.jpg"; got != want {
		t.Errorf("URL path = %s, want %s", got, want)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"sp": "r", "sr": "b", "spr": "https", "sv": sas.Version,
		"st": "2026-03-01T10:25:00Z", "se": "2026-03-01T11:30:00Z",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if q.Get("sig") == "" {
		t.Error("no sig")
	}
	if want := azTestAt.Add(time.Hour); !p.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v", p.Expires, want)
	}
	if p.Header != nil {
		t.Errorf("Header = %v, want none", p.Header)
	}

	t.Run("deterministic", func(t *testing.T) {
		again, err := s.Presign(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if again.URL != p.URL {
			t.Errorf("second URL differs:\n%s\n%s", again.URL, p.URL)
		}
		// Another replica with the same credentials.
		s2, _ := NewAzure(azSharedKeyConfig("acme", azTestKey, ""), nil)
		other, err := s2.Presign(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if other.URL != p.URL {
			t.Errorf("replica URL differs:\n%s\n%s", other.URL, p.URL)
		}
		// HEAD uses the same read SAS.
		head := req
		head.Method = http.MethodHead
		h, err := s.Presign(ctx, head)
		if err != nil {
			t.Fatal(err)
		}
		if h.URL != p.URL {
			t.Errorf("HEAD URL differs from GET:\n%s\n%s", h.URL, p.URL)
		}
		// Sub-second differences vanish; a different second does not.
		sub := req
		sub.At = azTestAt.Add(300 * time.Millisecond)
		if x, _ := s.Presign(ctx, sub); x.URL != p.URL {
			t.Errorf("At+300ms gives a different URL")
		}
		later := req
		later.At = azTestAt.Add(time.Second)
		if x, _ := s.Presign(ctx, later); x.URL == p.URL {
			t.Errorf("At+1s gives the same URL")
		}
	})

	t.Run("TTL beyond MaxTTL refused, as by every signer", func(t *testing.T) {
		r := req
		r.TTL = 30 * 24 * time.Hour
		if x, err := s.Presign(ctx, r); err == nil {
			t.Errorf("Presign(ttl 30d) = %v, want an error", x.URL)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, r := range []Request{
			{Method: http.MethodPut, Key: "a", At: azTestAt, TTL: time.Hour},
			{Method: http.MethodGet, Key: "", At: azTestAt, TTL: time.Hour},
			{Method: http.MethodGet, Key: "a", At: azTestAt, TTL: 0},
		} {
			if x, err := s.Presign(ctx, r); err == nil {
				t.Errorf("Presign(%+v) = %s, want an error", r, x.URL)
			}
		}
	})

	t.Run("escaping", func(t *testing.T) {
		for _, tt := range []struct{ key, path string }{
			{"cats/1.jpg", "/frames/cats/1.jpg"},
			{"with space.jpg", "/frames/with%20space.jpg"},
			{"a+b.jpg", "/frames/a%2Bb.jpg"},
			{"100% real.jpg", "/frames/100%25%20real.jpg"},
			{"paren (1).jpg", "/frames/paren%20%281%29.jpg"},
			{"ünï/猫.jpg", "/frames/%C3%BCn%C3%AF/%E7%8C%AB.jpg"},
			{"q?x#y&z=1", "/frames/q%3Fx%23y%26z%3D1"},
		} {
			x, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: tt.key, At: azTestAt, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(x.URL)
			if err != nil {
				t.Fatalf("%q: %v", x.URL, err)
			}
			if got := u.EscapedPath(); got != tt.path {
				t.Errorf("key %q: path %s, want %s", tt.key, got, tt.path)
			}
			if got, want := u.Path, "/frames/"+tt.key; got != want {
				t.Errorf("key %q: decoded path %q, want %q", tt.key, got, want)
			}
		}
	})

	t.Run("azurite endpoint", func(t *testing.T) {
		s, err := NewAzure(azSharedKeyConfig("devstoreaccount1", azTestKey, "http://127.0.0.1:10000/devstoreaccount1/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		x, err := s.Presign(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if want := "http://127.0.0.1:10000/devstoreaccount1/frames/cats/1.jpg?"; !strings.HasPrefix(x.URL, want) {
			t.Errorf("URL = %s, want prefix %s", x.URL, want)
		}
		u, _ := url.Parse(x.URL)
		if got := u.Query().Get("spr"); got != "https,http" {
			t.Errorf("spr = %q, want https,http", got)
		}
	})

	t.Run("check", func(t *testing.T) {
		if err := s.Check(ctx); err != nil {
			t.Errorf("Check: %v", err)
		}
	})
}

// azBlobs are the names stored in Azurite: the awkward ones are where
// escaping and canonicalisation go wrong.
var azBlobs = []string{
	"cats/1.jpg",
	"with space.jpg",
	"a+b.jpg",
	"100% real.jpg",
	"paren (1).jpg",
	"ünïcødé/猫.jpg",
	"deep/er/still/x.bin",
}

func azBody(name string) []byte {
	return []byte("body of " + name + " " + strings.Repeat("0123456789", 10))
}

func TestAzureAzurite(t *testing.T) {
	az := testenv.StartAzurite(t)
	az.CreateContainer(t, "frames")
	for _, b := range azBlobs {
		az.Put(t, "frames", b, azBody(b))
	}
	s, err := NewAzure(azSharedKeyConfig(az.Account, az.Key, az.Endpoint), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	azCheckAgainstServer(t, s, testenv.LocalhostClient(), func(t *testing.T) Signer {
		other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 64))
		w, err := NewAzure(azSharedKeyConfig(az.Account, other, az.Endpoint), nil)
		if err != nil {
			t.Fatal(err)
		}
		return w
	})
}

// azCheckAgainstServer runs the signature tests shared by the shared-key and
// user-delegation signers against a real server holding azBlobs in
// container "frames". wrongKey returns a signer for the same account with
// other credentials.
func azCheckAgainstServer(t *testing.T, s Signer, client *http.Client, wrongKey func(t *testing.T) Signer) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Minute)
	sign := func(t *testing.T, s Signer, key string, at time.Time, ttl time.Duration) string {
		t.Helper()
		p, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: key, At: at, TTL: ttl})
		if err != nil {
			t.Fatalf("Presign(%q): %v", key, err)
		}
		return p.URL
	}
	do := func(t *testing.T, method, u string, h http.Header) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}
	refused := func(t *testing.T, u string) {
		t.Helper()
		code, h, body := do(t, http.MethodGet, u, nil)
		// Azurite says AuthorizationFailure, Azure AuthenticationFailed.
		if ec := h.Get("x-ms-error-code"); code != http.StatusForbidden || (ec != "AuthorizationFailure" && ec != "AuthenticationFailed") {
			t.Errorf("GET status %d, code %q, want 403 for the signature; body %.300s", code, ec, body)
		}
	}

	for _, name := range azBlobs {
		t.Run("get "+name, func(t *testing.T) {
			want := azBody(name)
			u := sign(t, s, name, now, time.Hour)
			code, _, body := do(t, http.MethodGet, u, nil)
			if code != http.StatusOK || !bytes.Equal(body, want) {
				t.Fatalf("GET %s: status %d body %.300q; want 200 %q", name, code, body, want)
			}
			code, h, _ := do(t, http.MethodHead, u, nil)
			if code != http.StatusOK || h.Get("Content-Length") != strconv.Itoa(len(want)) {
				t.Errorf("HEAD %s: status %d, Content-Length %q; want 200, %d", name, code, h.Get("Content-Length"), len(want))
			}
		})
	}

	t.Run("range", func(t *testing.T) {
		name := "with space.jpg"
		want := azBody(name)
		code, h, body := do(t, http.MethodGet, sign(t, s, name, now, time.Hour), http.Header{"Range": {"bytes=3-9"}})
		if code != http.StatusPartialContent || !bytes.Equal(body, want[3:10]) {
			t.Fatalf("status %d body %q; want 206 %q", code, body, want[3:10])
		}
		if got, want := h.Get("Content-Range"), fmt.Sprintf("bytes 3-9/%d", len(want)); got != want {
			t.Errorf("Content-Range = %q, want %q", got, want)
		}
	})

	t.Run("deterministic", func(t *testing.T) {
		a, b := sign(t, s, "cats/1.jpg", now, time.Hour), sign(t, s, "cats/1.jpg", now, time.Hour)
		if a != b {
			t.Errorf("two URLs for one request:\n%s\n%s", a, b)
		}
	})

	t.Run("tampered signature", func(t *testing.T) {
		u, _ := url.Parse(sign(t, s, "cats/1.jpg", now, time.Hour))
		q := u.Query()
		sig := []byte(q.Get("sig"))
		if sig[0] == 'A' {
			sig[0] = 'B'
		} else {
			sig[0] = 'A'
		}
		q.Set("sig", string(sig))
		u.RawQuery = q.Encode()
		refused(t, u.String())
	})

	t.Run("extended expiry", func(t *testing.T) {
		u, _ := url.Parse(sign(t, s, "cats/1.jpg", now, time.Hour))
		q := u.Query()
		q.Set("se", now.Add(48*time.Hour).Format(sas.TimeFormat))
		u.RawQuery = q.Encode()
		refused(t, u.String())
	})

	t.Run("other blob", func(t *testing.T) {
		u, _ := url.Parse(sign(t, s, "cats/1.jpg", now, time.Hour))
		u.Path, u.RawPath = strings.Replace(u.Path, "cats/1.jpg", "a+b.jpg", 1), ""
		refused(t, strings.Replace(u.String(), "a+b.jpg", "a%2Bb.jpg", 1))
	})

	t.Run("wrong key", func(t *testing.T) {
		refused(t, sign(t, wrongKey(t), "cats/1.jpg", now, time.Hour))
	})

	t.Run("expired", func(t *testing.T) {
		refused(t, sign(t, s, "cats/1.jpg", now.Add(-3*time.Hour), time.Hour))
	})

	t.Run("not yet valid", func(t *testing.T) {
		refused(t, sign(t, s, "cats/1.jpg", now.Add(2*time.Hour), time.Hour))
	})
}

// azFakeToken is an azcore.TokenCredential handing out unsigned JWTs with the
// claims Azurite's basic OAuth check reads (it does not verify signatures).
type azFakeToken struct {
	oid, tid string
	err      error
	calls    atomic.Int32
}

func (f *azFakeToken) GetToken(_ context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	if f.err != nil {
		return azcore.AccessToken{}, f.err
	}
	now := time.Now()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	claims := map[string]any{
		"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/" + f.tid + "/",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"oid": f.oid, "tid": f.tid,
	}
	tok := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte("unsigned"))
	return azcore.AccessToken{Token: tok, ExpiresOn: now.Add(time.Hour)}, nil
}

// azFakeKeyService answers Get User Delegation Key requests the way the
// service does, with a key valid for the window the request asked for. It
// proves nothing about signatures (TestAzureUserDelegationAzurite does that);
// it counts fetches for the caching tests.
type azFakeKeyService struct {
	fetches atomic.Int32
	fail    atomic.Bool
	delay   time.Duration
	mu      sync.Mutex
	urls    []string
}

func (f *azFakeKeyService) Do(req *http.Request) (*http.Response, error) {
	f.fetches.Add(1)
	f.mu.Lock()
	f.urls = append(f.urls, req.URL.String())
	f.mu.Unlock()
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	resp := &http.Response{Request: req, Header: http.Header{"Content-Type": {"application/xml"}}}
	if f.fail.Load() {
		resp.StatusCode = http.StatusForbidden
		resp.Header.Set("x-ms-error-code", "AuthorizationPermissionMismatch")
		resp.Body = io.NopCloser(strings.NewReader(`<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code></Error>`))
		return resp, nil
	}
	var ki struct{ Start, Expiry string }
	if err := xml.NewDecoder(req.Body).Decode(&ki); err != nil {
		return nil, err
	}
	resp.StatusCode = http.StatusOK
	resp.Body = io.NopCloser(strings.NewReader(`<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>` +
		`<SignedOid>11111111-1111-1111-1111-111111111111</SignedOid><SignedTid>22222222-2222-2222-2222-222222222222</SignedTid>` +
		`<SignedStart>` + ki.Start + `</SignedStart><SignedExpiry>` + ki.Expiry + `</SignedExpiry>` +
		`<SignedService>b</SignedService><SignedVersion>2026-06-06</SignedVersion>` +
		`<Value>` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)) + `</Value></UserDelegationKey>`))
	return resp, nil
}

// azClock is a settable clock.
type azClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *azClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *azClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func azNewFakeDelegation(t testing.TB, endpoint string) (*Azure, *azFakeKeyService, *azClock, *azFakeToken) {
	t.Helper()
	svc := &azFakeKeyService{}
	clock := &azClock{t: azTestAt}
	tok := &azFakeToken{oid: "o", tid: "t"}
	s, err := newAzure(Config{Account: "acme", Bucket: "frames", Endpoint: endpoint, Credentials: Credentials{Type: AzureDefault}},
		azureOptions{cred: tok, transport: svc, now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s, svc, clock, tok
}

func TestAzureDelegationKeyCache(t *testing.T) {
	ctx := context.Background()

	t.Run("cached, refreshed with half its life left", func(t *testing.T) {
		s, svc, clock, _ := azNewFakeDelegation(t, "")
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if got := svc.urls[0]; !strings.HasPrefix(got, "https://acme.blob.core.windows.net/?") || !strings.Contains(got, "comp=userdelegationkey") {
			t.Errorf("key fetched from %s", got)
		}
		// Hour-aligned key: 10:30 gives 09:55 to 09:55 next day.
		r := Request{Method: http.MethodGet, Key: "k", At: clock.Now(), TTL: time.Hour}
		p1, err := s.Presign(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(p1.URL)
		q := u.Query()
		for k, want := range map[string]string{
			"skt": "2026-03-01T09:55:00Z", "ske": "2026-03-02T09:55:00Z", "skoid": "11111111-1111-1111-1111-111111111111",
			"st": "2026-03-01T10:25:00Z", "se": "2026-03-01T11:30:00Z", "sp": "r", "sr": "b", "spr": "https",
		} {
			if got := q.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		p2, _ := s.Presign(ctx, r)
		if p2.URL != p1.URL {
			t.Errorf("same request, cached key, different URL")
		}
		clock.Add(11 * time.Hour) // 21:30, 12h25m left
		if _, err := s.Presign(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got := svc.fetches.Load(); got != 1 {
			t.Errorf("fetches = %d after 11h, want 1", got)
		}
		clock.Add(time.Hour) // 22:30, 11h25m left: refresh
		r.At = clock.Now()
		p3, err := s.Presign(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if got := svc.fetches.Load(); got != 2 {
			t.Errorf("fetches = %d after 12h, want 2", got)
		}
		u, _ = url.Parse(p3.URL)
		if got, want := u.Query().Get("skt"), "2026-03-01T21:55:00Z"; got != want {
			t.Errorf("refreshed skt = %s, want %s", got, want)
		}
	})

	t.Run("expiry capped at the key's", func(t *testing.T) {
		s, _, clock, _ := azNewFakeDelegation(t, "")
		p, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: "k", At: clock.Now(), TTL: 5 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		want := time.Date(2026, 3, 2, 9, 55, 0, 0, time.UTC)
		if !p.Expires.Equal(want) {
			t.Errorf("Expires = %v, want the key's expiry %v", p.Expires, want)
		}
		u, _ := url.Parse(p.URL)
		if got := u.Query().Get("se"); got != want.Format(sas.TimeFormat) {
			t.Errorf("se = %s, want %s", got, want.Format(sas.TimeFormat))
		}
		// A window start before the key's start is moved up to it.
		p, err = s.Presign(ctx, Request{Method: http.MethodGet, Key: "k", At: clock.Now().Add(-2 * time.Hour), TTL: 4 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		u, _ = url.Parse(p.URL)
		if got, want := u.Query().Get("st"), "2026-03-01T09:55:00Z"; got != want {
			t.Errorf("st = %s, want the key's start %s", got, want)
		}
	})

	t.Run("concurrent misses share one fetch", func(t *testing.T) {
		s, svc, clock, _ := azNewFakeDelegation(t, "")
		svc.delay = 50 * time.Millisecond
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: "k" + strconv.Itoa(i), At: clock.Now(), TTL: time.Hour})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got := svc.fetches.Load(); got != 1 {
			t.Errorf("fetches = %d, want 1", got)
		}
	})

	t.Run("failures wrap ErrCredentials", func(t *testing.T) {
		s, svc, clock, _ := azNewFakeDelegation(t, "")
		svc.fail.Store(true)
		err := s.Check(ctx)
		if !errors.Is(err, ErrCredentials) {
			t.Errorf("Check = %v, want ErrCredentials", err)
		}
		if _, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: "k", At: clock.Now(), TTL: time.Hour}); !errors.Is(err, ErrCredentials) {
			t.Errorf("Presign = %v, want ErrCredentials", err)
		}

		s, _, _, tok := azNewFakeDelegation(t, "")
		tok.err = errors.New("no identity")
		if err := s.Check(ctx); !errors.Is(err, ErrCredentials) {
			t.Errorf("Check with failing token = %v, want ErrCredentials", err)
		}
	})

	t.Run("failed refresh keeps a still valid key", func(t *testing.T) {
		s, svc, clock, _ := azNewFakeDelegation(t, "")
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
		svc.fail.Store(true)
		clock.Add(20 * time.Hour) // refresh due, key valid for 3h25m more
		p, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: "k", At: clock.Now(), TTL: time.Hour})
		if err != nil {
			t.Fatalf("Presign with a failing refresh: %v", err)
		}
		if want := clock.Now().Add(time.Hour); !p.Expires.Equal(want) {
			t.Errorf("Expires = %v, want %v", p.Expires, want)
		}
		clock.Add(4 * time.Hour) // key expired
		if _, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: "k", At: clock.Now(), TTL: time.Hour}); !errors.Is(err, ErrCredentials) {
			t.Errorf("Presign after the key expired = %v, want ErrCredentials", err)
		}
	})

	t.Run("caller gone", func(t *testing.T) {
		s, svc, clock, _ := azNewFakeDelegation(t, "")
		svc.delay = 200 * time.Millisecond
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := s.Presign(cctx, Request{Method: http.MethodGet, Key: "k", At: clock.Now(), TTL: time.Hour}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Presign = %v, want DeadlineExceeded", err)
		}
	})

	t.Run("path-style endpoint", func(t *testing.T) {
		s, svc, clock, _ := azNewFakeDelegation(t, "http://127.0.0.1:10000/acme")
		p, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: "k", At: clock.Now(), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if got := svc.urls[0]; !strings.HasPrefix(got, "http://127.0.0.1:10000/acme/?") {
			t.Errorf("key fetched from %s, want the configured endpoint", got)
		}
		if want := "http://127.0.0.1:10000/acme/frames/k?"; !strings.HasPrefix(p.URL, want) {
			t.Errorf("URL = %s, want prefix %s", p.URL, want)
		}
	})

	t.Run("no bearer token over plain HTTP to a remote host", func(t *testing.T) {
		s, svc, _, _ := azNewFakeDelegation(t, "http://storage.example.com/acme")
		if err := s.Check(ctx); !errors.Is(err, ErrCredentials) {
			t.Errorf("Check = %v, want ErrCredentials", err)
		}
		if got := svc.fetches.Load(); got != 0 {
			t.Errorf("%d requests sent", got)
		}
	})
}

// startAzuriteOAuth starts Azurite over HTTPS with --oauth basic, the only
// way it serves Get User Delegation Key, with a fresh self-signed
// certificate for 127.0.0.1. It returns the endpoint and a client trusting
// the certificate. testenv starts plain-HTTP Azurite only.
func startAzuriteOAuth(t *testing.T) (endpoint string, client *http.Client) {
	t.Helper()
	mainJS := testenv.Tool(t, "azurite")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("azurite needs node on PATH: %v", err)
	}
	dir := t.TempDir()
	certPEM, keyPEM := azSelfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client = &http.Client{
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}

	for attempt := 0; attempt < 3; attempt++ {
		port := testenv.FreePort(t)
		logPath := filepath.Join(dir, fmt.Sprintf("azurite-%d.log", attempt))
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(node, mainJS, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
			"--inMemoryPersistence", "--disableTelemetry", "--silent", "--skipApiVersionCheck",
			"--oauth", "basic", "--cert", certFile, "--key", keyFile)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatal(err)
		}
		logf.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		stop := func() {
			select {
			case <-done:
				return
			default:
			}
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
		want := []byte(fmt.Sprintf("successfully listens on https://127.0.0.1:%d", port))
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-done:
				deadline = time.Time{} // exited: lost the port, try another
				continue
			default:
			}
			out, _ := os.ReadFile(logPath)
			if bytes.Contains(out, want) {
				if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
					c.Close()
					t.Cleanup(stop)
					return fmt.Sprintf("https://127.0.0.1:%d/devstoreaccount1", port), client
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		out, _ := os.ReadFile(logPath)
		t.Logf("azurite attempt %d on port %d failed:\n%s", attempt, port, out)
	}
	t.Fatal("azurite over HTTPS did not start")
	return "", nil
}

func azSelfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// Azurite's development account; its well-known key is published in
// Azurite's documentation.
const (
	azDevAccount = "devstoreaccount1"
	azDevKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

func TestAzureUserDelegationAzurite(t *testing.T) {
	endpoint, client := startAzuriteOAuth(t)
	ctx := context.Background()

	cred, err := azblob.NewSharedKeyCredential(azDevAccount, azDevKey)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := azblob.NewClientWithSharedKeyCredential(endpoint+"/", cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: client}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateContainer(ctx, "frames", nil); err != nil {
		t.Fatal(err)
	}
	for _, b := range azBlobs {
		if _, err := admin.UploadBuffer(ctx, "frames", b, azBody(b), nil); err != nil {
			t.Fatalf("put %s: %v", b, err)
		}
	}

	newSigner := func(t *testing.T, oid string, now func() time.Time) *Azure {
		t.Helper()
		s, err := newAzure(Config{Provider: ProviderAzure, Account: azDevAccount, Bucket: "frames", Endpoint: endpoint,
			Credentials: Credentials{Type: AzureDefault}},
			azureOptions{cred: &azFakeToken{oid: oid, tid: "22222222-2222-2222-2222-222222222222"}, transport: client, now: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		return s
	}
	// The signers' clock runs 3h behind, so the hour-aligned delegation key
	// they fetch covers both now and the window of the expired-URL test (a
	// user delegation SAS cannot start before its key).
	fixed := time.Now().Add(-3 * time.Hour)
	clock := func() time.Time { return fixed }
	s := newSigner(t, "11111111-1111-1111-1111-111111111111", clock)

	azCheckAgainstServer(t, s, client, func(t *testing.T) Signer {
		// The same identity and key window, but a key value the service
		// never issued.
		w, err := newAzure(Config{Provider: ProviderAzure, Account: azDevAccount, Bucket: "frames", Endpoint: endpoint,
			Credentials: Credentials{Type: AzureDefault}},
			azureOptions{cred: &azFakeToken{}, transport: &azFakeKeyService{}, now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return w
	})

	t.Run("replicas in one hour sign identical URLs", func(t *testing.T) {
		r := Request{Method: http.MethodGet, Key: "cats/1.jpg", At: fixed.Truncate(time.Minute), TTL: time.Hour}
		a, err := s.Presign(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := newSigner(t, "11111111-1111-1111-1111-111111111111", clock).Presign(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if a.URL != b.URL {
			t.Errorf("replica URLs differ:\n%s\n%s", a.URL, b.URL)
		}
	})

	t.Run("capped at the key's expiry and still valid", func(t *testing.T) {
		p, err := s.Presign(ctx, Request{Method: http.MethodGet, Key: "cats/1.jpg", At: fixed, TTL: 6 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if p.Expires.After(fixed.Add(azureKeyLifetime)) {
			t.Errorf("Expires = %v, beyond the key's lifetime", p.Expires)
		}
		resp, err := client.Get(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	})
}

func BenchmarkAzurePresign(b *testing.B) {
	ctx := context.Background()
	b.Run("shared_key", func(b *testing.B) {
		s, err := NewAzure(azSharedKeyConfig("acme", azTestKey, ""), nil)
		if err != nil {
			b.Fatal(err)
		}
		r := Request{Method: http.MethodGet, Key: "datasets/42/frames/000123 (1).jpg", At: azTestAt, TTL: time.Hour}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Presign(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("user_delegation", func(b *testing.B) {
		s, _, clock, _ := azNewFakeDelegation(b, "")
		if err := s.Check(ctx); err != nil {
			b.Fatal(err)
		}
		r := Request{Method: http.MethodGet, Key: "datasets/42/frames/000123 (1).jpg", At: clock.Now(), TTL: time.Hour}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Presign(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAzureUserDelegationMatchesSDK: the edge's own user delegation SAS is
// byte for byte what the SDK's sas.SignWithUserDelegation makes from the
// same key (obtained through the SDK's service client, which only tests
// link), for plain, escaped and backslashed blob names, over https and
// http.
func TestAzureUserDelegationMatchesSDK(t *testing.T) {
	ctx := context.Background()
	for _, endpoint := range []string{"", "http://127.0.0.1:10000/acme"} {
		s, svc, clock, tok := azNewFakeDelegation(t, endpoint)
		k, err := s.delegationKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		client, err := service.NewClient("https://acme.blob.core.windows.net/", tok,
			&service.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: svc}})
		if err != nil {
			t.Fatal(err)
		}
		udc, err := client.GetUserDelegationCredential(ctx, service.KeyInfo{Start: &k.skt, Expiry: &k.ske}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"k", "datasets/42/frames/000123 (1).jpg", `a\b/ü+&?.png`} {
			start, expiry := clock.Now().Truncate(time.Second), clock.Now().Truncate(time.Second).Add(time.Hour)
			v := sas.BlobSignatureValues{Protocol: s.protocol, StartTime: start, ExpiryTime: expiry,
				Permissions: blobPermRead, ContainerName: "frames", BlobName: name}
			qp, err := v.SignWithUserDelegation(udc)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.signUserDelegation(k, start, expiry, blobPermRead, name), qp.Encode(); got != want {
				t.Errorf("endpoint %q, blob %q:\n got %s\nwant %s", endpoint, name, got, want)
			}
		}
	}
}

// TestAzureKeyErrors: a refused key request names the storage error code
// and the status, never the body (which can quote the request) or the token.
func TestAzureKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		body   string
		want   string
	}{
		{"header code", "AuthenticationFailed", `<Error><Code>AuthenticationFailed</Code><Message>secret-body-text</Message></Error>`, "HTTP 403 AuthenticationFailed"},
		{"body code", "", `<?xml version="1.0"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>secret-body-text</Message></Error>`, "HTTP 403 AuthorizationPermissionMismatch"},
		{"no code", "", `secret-body-text`, "HTTP 403 (no error code)"},
		{"code with junk", "Bad<script>Code secret-body-text", ``, "HTTP 403 BadscriptCodesecretbodytext"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := &azFakeToken{oid: "o", tid: "t"}
			s, err := newAzure(Config{Account: "acme", Bucket: "frames", Credentials: Credentials{Type: AzureDefault}},
				azureOptions{cred: tok, now: func() time.Time { return azTestAt },
					transport: azDoerFunc(func(req *http.Request) (*http.Response, error) {
						h := http.Header{}
						if tc.header != "" {
							h.Set("x-ms-error-code", tc.header)
						}
						return &http.Response{StatusCode: http.StatusForbidden, Header: h, Request: req,
							Body: io.NopCloser(strings.NewReader(tc.body))}, nil
					})})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Check(context.Background())
			if !errors.Is(err, ErrCredentials) {
				t.Fatalf("Check = %v, want ErrCredentials", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to contain %q", msg, tc.want)
			}
			if tc.name != "code with junk" && strings.Contains(msg, "secret-body-text") {
				t.Errorf("error %q quotes the body", msg)
			}
			if strings.Contains(msg, "eyJ") {
				t.Errorf("error %q quotes the token", msg)
			}
		})
	}
}

type azDoerFunc func(*http.Request) (*http.Response, error)

func (f azDoerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

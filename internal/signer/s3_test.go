package signer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/testenv"
)

// AWS's documented example credentials.
const (
	s3tAKID   = "AKIAIOSFODNN7EXAMPLE"
	s3tSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

var s3tAt = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

// s3tURIEncode is SigV4's UriEncode: every byte but the unreserved ones
// as %XX (uppercase), '/' kept when slash is set.
func s3tURIEncode(s string, slash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || slash && c == '/' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

func s3tHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// s3tSignature computes a SigV4 query-string signature from scratch, as
// AWS's "Authenticating Requests: Using Query Parameters" describes it, for
// a request whose only signed header is host. It shares no code with the
// SDK, so it checks the signer's canonicalisation independently.
func s3tSignature(secret, region, method, host, canonicalURI string, query url.Values) string {
	keys := make([]string, 0, len(query))
	for k := range query {
		if k != "X-Amz-Signature" {
			keys = append(keys, k)
		}
	}
	enc := make([]string, 0, len(keys))
	for _, k := range keys {
		enc = append(enc, s3tURIEncode(k, false)+"="+s3tURIEncode(query.Get(k), false))
	}
	sort.Strings(enc)
	canonical := strings.Join([]string{method, canonicalURI, strings.Join(enc, "&"), "host:" + host + "\n", "host", "UNSIGNED-PAYLOAD"}, "\n")
	date := query.Get("X-Amz-Date")
	scope := date[:8] + "/" + region + "/s3/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	k := s3tHMAC([]byte("AWS4"+secret), date[:8])
	k = s3tHMAC(k, region)
	k = s3tHMAC(k, "s3")
	k = s3tHMAC(k, "aws4_request")
	return hex.EncodeToString(s3tHMAC(k, toSign))
}

// TestS3tSignatureVector checks the independent implementation against
// AWS's published example of a presigned GET.
func TestS3tSignatureVector(t *testing.T) {
	q := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {s3tAKID + "/20130524/us-east-1/s3/aws4_request"},
		"X-Amz-Date":          {"20130524T000000Z"},
		"X-Amz-Expires":       {"86400"},
		"X-Amz-SignedHeaders": {"host"},
	}
	got := s3tSignature(s3tSecret, "us-east-1", "GET", "examplebucket.s3.amazonaws.com", "/test.txt", q)
	if want := "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"; got != want {
		t.Fatalf("signature = %s, want AWS's %s", got, want)
	}
}

func s3tSigner(t testing.TB, cfg Config) *S3 {
	t.Helper()
	cfg.Provider = ProviderS3
	if cfg.Credentials.Type == "" {
		cfg.Credentials = Credentials{Type: "static", AccessKeyID: s3tAKID, SecretAccessKey: s3tSecret}
	}
	cfg.Defaults()
	if errs := cfg.Validate("s"); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	s, err := NewS3(context.Background(), cfg, S3Options{})
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s
}

var s3tKeys = []string{
	"test.txt",
	"a b/c d.jpg",
	"a+b.jpg",
	"100%.jpg",
	"100%25.jpg",
	"(1) [2] {3}.png",
	"a&b=c;d,e:f@g!h$i'j*k.txt",
	"q?x#y.txt",
	"猫/ü é.txt",
	"emoji 🐈.jpg",
	"~tilde_under-dash.dot",
	"%2e%2e/literal",
	"double//slash/",
	"/leading",
}

// s3tStoreKeys are the keys a posix-backed versitygw can hold (it refuses
// data under a key ending in '/' and collapses '//').
var s3tStoreKeys = s3tKeys[:len(s3tKeys)-2]

// TestS3KnownAnswer: for every awkward key, bucket form and method, the
// URL's path is the key URI-encoded once, and its signature is what an
// independent SigV4 computation at the fixed time gives.
func TestS3KnownAnswer(t *testing.T) {
	tests := []struct {
		name, bucket, region, endpoint, addressing string
		host, pathPrefix                           string
	}{
		{"virtual-hosted", "examplebucket", "us-east-1", "", "auto", "examplebucket.s3.us-east-1.amazonaws.com", "/"},
		{"other region", "examplebucket", "eu-west-1", "", "auto", "examplebucket.s3.eu-west-1.amazonaws.com", "/"},
		{"dotted bucket is path-style", "example.bucket", "eu-west-1", "", "auto", "s3.eu-west-1.amazonaws.com", "/example.bucket/"},
		{"path-style asked", "examplebucket", "us-east-1", "", "path", "s3.us-east-1.amazonaws.com", "/examplebucket/"},
		{"custom endpoint", "examplebucket", "us-east-1", "http://127.0.0.1:9000", "path", "127.0.0.1:9000", "/examplebucket/"},
		{"custom endpoint with path", "examplebucket", "us-east-1", "https://gw.example.com/s3", "path", "gw.example.com", "/s3/examplebucket/"},
		{"custom endpoint virtual-hosted", "examplebucket", "us-east-1", "http://localhost:9000", "virtual", "examplebucket.localhost:9000", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s3tSigner(t, Config{Bucket: tt.bucket, Region: tt.region, Endpoint: tt.endpoint, Addressing: tt.addressing})
			for _, key := range s3tKeys {
				for _, method := range []string{"GET", "HEAD"} {
					p, err := s.Presign(context.Background(), Request{Method: method, Key: key, At: s3tAt, TTL: 24 * time.Hour})
					if err != nil {
						t.Fatalf("Presign(%q): %v", key, err)
					}
					u, err := url.Parse(p.URL)
					if err != nil {
						t.Fatalf("URL %q: %v", p.URL, err)
					}
					if u.Host != tt.host {
						t.Errorf("%q: host = %s, want %s", key, u.Host, tt.host)
					}
					wantPath := tt.pathPrefix + s3tURIEncode(key, true)
					if u.EscapedPath() != wantPath && u.RawPath != wantPath {
						t.Errorf("%q: path = %s, want %s", key, u.EscapedPath(), wantPath)
					}
					q := u.Query()
					for k, want := range map[string]string{
						"X-Amz-Algorithm":     "AWS4-HMAC-SHA256",
						"X-Amz-Credential":    s3tAKID + "/20130524/" + tt.region + "/s3/aws4_request",
						"X-Amz-Date":          "20130524T000000Z",
						"X-Amz-Expires":       "86400",
						"X-Amz-SignedHeaders": "host",
					} {
						if got := q.Get(k); got != want {
							t.Errorf("%q: %s = %q, want %q", key, k, got, want)
						}
					}
					if want := s3tSignature(s3tSecret, tt.region, method, tt.host, wantPath, q); q.Get("X-Amz-Signature") != want {
						t.Errorf("%s %q: X-Amz-Signature = %s, want %s", method, key, q.Get("X-Amz-Signature"), want)
					}
					if !p.Expires.Equal(s3tAt.Add(24 * time.Hour)) {
						t.Errorf("Expires = %s", p.Expires)
					}
					if p.Header != nil {
						t.Errorf("a browser URL carries headers: %v", p.Header)
					}
				}
			}
		})
	}
}

func TestS3Presign(t *testing.T) {
	s := s3tSigner(t, Config{Bucket: "b", Region: "eu-west-1"})
	ctx := context.Background()
	sign := func(r Request) Presigned {
		t.Helper()
		p, err := s.Presign(ctx, r)
		if err != nil {
			t.Fatalf("Presign(%+v): %v", r, err)
		}
		return p
	}
	base := Request{Method: "GET", Key: "k.jpg", At: s3tAt, TTL: time.Hour}
	a := sign(base)
	if b := sign(base); b.URL != a.URL {
		t.Errorf("same request, different URLs:\n%s\n%s", a.URL, b.URL)
	}
	r := base
	r.Method = ""
	if b := sign(r); b.URL != a.URL {
		t.Errorf("empty method is not GET")
	}
	r = base
	r.At = s3tAt.Add(999 * time.Millisecond).In(time.FixedZone("CEST", 2*3600))
	if b := sign(r); b.URL != a.URL {
		t.Errorf("sub-second or zone changes the URL:\n%s\n%s", a.URL, b.URL)
	}
	r = base
	r.At = s3tAt.Add(time.Second)
	if b := sign(r); b.URL == a.URL {
		t.Errorf("another signing time, the same URL")
	}
	r = base
	r.Method = "HEAD"
	if b := sign(r); b.URL == a.URL {
		t.Errorf("HEAD and GET URLs are the same")
	}
	r = base
	r.TTL = MaxTTL
	if b := sign(r); mustQ(t, b.URL).Get("X-Amz-Expires") != "604800" {
		t.Errorf("7 days: %s", b.URL)
	}
	for _, bad := range []Request{
		{Method: "GET", Key: "k", At: s3tAt, TTL: MaxTTL + time.Second},
		{Method: "GET", Key: "k", At: s3tAt, TTL: 0},
		{Method: "GET", Key: "k", At: s3tAt, TTL: -time.Hour},
		{Method: "POST", Key: "k", At: s3tAt, TTL: time.Hour},
		{Method: "DELETE", Key: "k", At: s3tAt, TTL: time.Hour},
	} {
		if p, err := s.Presign(ctx, bad); err == nil {
			t.Errorf("Presign(%+v) = %s, want an error", bad, p.URL)
		}
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check with static credentials: %v", err)
	}
}

func mustQ(t testing.TB, u string) url.Values {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Query()
}

// TestS3SSEC: a fetch URL carries the customer key in headers that are
// signed; a browser URL carries none and the key never appears in a URL.
func TestS3SSEC(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	s := s3tSigner(t, Config{Bucket: "b", SSECKey: key})
	for _, method := range []string{"GET", "HEAD"} {
		p, err := s.Presign(context.Background(), Request{Method: method, Key: "k", At: s3tAt, TTL: time.Hour, ForFetch: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key"); got != key {
			t.Errorf("%s: customer key header = %q", method, got)
		}
		if p.Header.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != "AES256" || p.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5") == "" {
			t.Errorf("%s: SSE-C headers %v", method, p.Header)
		}
		if p.Header.Get("Host") != "" {
			t.Errorf("Host in the fetch headers")
		}
		if strings.Contains(p.URL, url.QueryEscape(key)) || strings.Contains(p.URL, key) {
			t.Errorf("the customer key is in the URL %s", p.URL)
		}
		if sh := mustQ(t, p.URL).Get("X-Amz-SignedHeaders"); !strings.Contains(sh, "x-amz-server-side-encryption-customer-key") {
			t.Errorf("SSE-C headers not signed: %s", sh)
		}
	}
	p, err := s3tSigner(t, Config{Bucket: "b"}).Presign(context.Background(), Request{Method: "GET", Key: "k", At: s3tAt, TTL: time.Hour, ForFetch: true})
	if err != nil || len(p.Header) != 0 {
		t.Errorf("without sse_c_key: headers %v, %v; want none", p.Header, err)
	}
}

func TestPathStyle(t *testing.T) {
	for _, tt := range []struct {
		bucket, addressing string
		want               bool
	}{
		{"plain", "auto", false},
		{"plain", "", false},
		{"dotted.name", "auto", true},
		{"dotted.name", "", true},
		{"plain", "path", true},
		{"dotted.name", "virtual", false},
	} {
		c := Config{Bucket: tt.bucket, Addressing: tt.addressing}
		if got := c.PathStyle(); got != tt.want {
			t.Errorf("PathStyle(%q, %q) = %v, want %v", tt.bucket, tt.addressing, got, tt.want)
		}
	}
}

// TestS3Versity: the signer's URLs against a real S3 server that checks
// signatures: every awkward key fetches its bytes in every addressing, and
// any change to the URL, another secret or an expired URL is refused.
func TestS3Versity(t *testing.T) {
	v := testenv.StartVersity(t)
	const bucket, dotted = "s3t-bucket", "s3t.dotted"
	body := func(k string) []byte { return []byte("s3t " + k) }
	for _, b := range []string{bucket, dotted} {
		v.CreateBucket(t, b)
		for _, k := range s3tStoreKeys {
			v.Put(t, b, k, body(k))
		}
	}
	client := testenv.LocalhostClient()
	fetch := func(t *testing.T, method, u string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, u, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	creds := Credentials{Type: "static", AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey}
	localhost := "http://localhost:" + strconv.Itoa(v.Port)
	now := time.Now().Truncate(time.Minute)
	for _, tt := range []struct {
		name                      string
		bucket, endpoint, address string
		wantHostPrefix            string
	}{
		{"path", bucket, v.Endpoint, "path", v.Endpoint + "/" + bucket + "/"},
		{"auto on an IP endpoint", bucket, v.Endpoint, "auto", v.Endpoint + "/" + bucket + "/"},
		{"dotted auto", dotted, v.Endpoint, "auto", v.Endpoint + "/" + dotted + "/"},
		{"dotted auto on localhost", dotted, localhost, "auto", localhost + "/" + dotted + "/"},
		{"virtual", bucket, localhost, "virtual", "http://" + bucket + ".localhost:" + strconv.Itoa(v.Port) + "/"},
		{"auto on localhost", bucket, localhost, "auto", "http://" + bucket + ".localhost:" + strconv.Itoa(v.Port) + "/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := s3tSigner(t, Config{Bucket: tt.bucket, Region: v.Region, Endpoint: tt.endpoint, Addressing: tt.address, Credentials: creds})
			for _, k := range s3tStoreKeys {
				p, err := s.Presign(t.Context(), Request{Method: "GET", Key: k, At: now, TTL: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(p.URL, tt.wantHostPrefix) {
					t.Errorf("URL %s, want prefix %s", p.URL, tt.wantHostPrefix)
				}
				if code, got := fetch(t, "GET", p.URL); code != 200 || string(got) != string(body(k)) {
					t.Errorf("GET %q: %d %q", k, code, got)
				}
			}
			p, _ := s.Presign(t.Context(), Request{Method: "HEAD", Key: "a+b.jpg", At: now, TTL: time.Hour})
			if code, _ := fetch(t, "HEAD", p.URL); code != 200 {
				t.Errorf("HEAD: %d", code)
			}
			if code, _ := fetch(t, "GET", p.URL); code != 403 {
				t.Errorf("GET with a HEAD URL: %d, want 403", code)
			}
			p, _ = s.Presign(t.Context(), Request{Method: "GET", Key: "a+b.jpg", At: now, TTL: time.Hour})
			sig := mustQ(t, p.URL).Get("X-Amz-Signature")
			for name, u := range map[string]string{
				"signature":  strings.Replace(p.URL, sig, sig[:len(sig)-1]+map[bool]string{true: "1", false: "0"}[sig[len(sig)-1] == '0'], 1),
				"key":        strings.Replace(p.URL, "/a%2Bb.jpg?", "/test.txt?", 1),
				"expires":    strings.Replace(p.URL, "X-Amz-Expires=3600", "X-Amz-Expires=3599", 1),
				"date":       strings.Replace(p.URL, now.UTC().Format("20060102T150405Z"), now.UTC().Add(time.Second).Format("20060102T150405Z"), 1),
				"credential": strings.Replace(p.URL, "us-east-1", "eu-west-1", 1),
			} {
				if u == p.URL {
					t.Fatalf("%s: tampering changed nothing", name)
				}
				// A credential scope for another region is malformed (400).
				if code, _ := fetch(t, "GET", u); code != 403 && !(name == "credential" && code == 400) {
					t.Errorf("tampered %s: %d, want 403", name, code)
				}
			}
			// Expired: signed two hours ago for one hour.
			p, _ = s.Presign(t.Context(), Request{Method: "GET", Key: "test.txt", At: now.Add(-2 * time.Hour), TTL: time.Hour})
			if code, _ := fetch(t, "GET", p.URL); code != 403 {
				t.Errorf("expired URL: %d, want 403", code)
			}
			// Another secret for the same access key.
			bad := s3tSigner(t, Config{Bucket: tt.bucket, Region: v.Region, Endpoint: tt.endpoint, Addressing: tt.address,
				Credentials: Credentials{Type: "static", AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey + "x"}})
			p, _ = bad.Presign(t.Context(), Request{Method: "GET", Key: "test.txt", At: now, TTL: time.Hour})
			if code, _ := fetch(t, "GET", p.URL); code != 403 {
				t.Errorf("wrong secret: %d, want 403", code)
			}
		})
	}
}

// BenchmarkPresignS3Miss is one SigV4 presign, as on a cache miss: static
// credentials, no network, a new signing time every iteration.
func BenchmarkPresignS3Miss(b *testing.B) {
	s := s3tSigner(b, Config{Bucket: "examplebucket", Region: "eu-west-1"})
	ctx := context.Background()
	at := s3tAt
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		if _, err := s.Presign(ctx, Request{Method: "GET", Key: "datasets/42/frames/000123.jpg", At: at, TTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
}

package signer

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWS's documented example credentials (SigV4 docs, "Authenticating
// Requests: Using Query Parameters").
const (
	sv4AKID   = "AKIAIOSFODNN7EXAMPLE"
	sv4Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// TestSigV4KnownAnswer is AWS's published presigned GET of
// examplebucket/test.txt.
func TestSigV4KnownAnswer(t *testing.T) {
	s := NewSigV4(SigV4Config{Scheme: "https", Host: "examplebucket.s3.amazonaws.com", Path: "/", Region: "us-east-1"})
	got := s.Presign(&SigV4Request{Method: "GET", Key: "test.txt", At: time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC),
		Expires: 86400, AccessKeyID: sv4AKID, SecretAccessKey: sv4Secret})
	want := "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
		"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
		"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// sv4Case is one differential case: a bucket base and a request.
type sv4Case struct {
	cfg SigV4Config
	req SigV4Request
}

// sdkPresign signs c with the SDK exactly as S3.Presign called it before
// SigV4 existed: the reference the fast signer must match byte for byte.
func sdkPresign(t testing.TB, sdk *v4.Signer, c *sv4Case) (string, http.Header) {
	t.Helper()
	req := &http.Request{
		Method: c.req.Method,
		URL: &url.URL{
			Scheme:   c.cfg.Scheme,
			Host:     c.cfg.Host,
			Path:     c.cfg.Path + c.req.Key,
			RawPath:  EscapePath(c.cfg.Path) + EscapePath(c.req.Key),
			RawQuery: "X-Amz-Expires=" + strconv.FormatInt(c.req.Expires, 10),
		},
		Host:   c.cfg.Host,
		Header: http.Header{},
	}
	if c.req.SSEC {
		req.Header["X-Amz-Server-Side-Encryption-Customer-Algorithm"] = []string{"AES256"}
		req.Header["X-Amz-Server-Side-Encryption-Customer-Key"] = []string{c.cfg.SSECKey}
		req.Header["X-Amz-Server-Side-Encryption-Customer-Key-Md5"] = []string{c.cfg.SSECKeyMD5}
	}
	creds := aws.Credentials{AccessKeyID: c.req.AccessKeyID, SecretAccessKey: c.req.SecretAccessKey, SessionToken: c.req.SessionToken}
	u, h, err := sdk.PresignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", c.cfg.Region, c.req.At)
	if err != nil {
		t.Fatal(err)
	}
	h.Del("Host")
	return u, h
}

func newSDKSigner() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

// sv4Alphabet mixes what keys and tokens may hold: reserved characters,
// spaces, percent signs, multi-byte UTF-8, and a stray invalid byte.
var sv4Alphabet = []string{
	"a", "Z", "0", "9", "-", "_", ".", "~", "/", "//", " ", "  ", "+", "%", "%2F", "?", "#", "&", "=", ";", ":", "@",
	"!", "$", "'", "(", ")", "*", ",", "[", "]", "\"", "<", ">", "\\", "^", "`", "{", "|", "}", "\t", "\n",
	"é", "ß", "日本", "🎞", "\u00a0", "\xff", "frames", "000123.jpg",
}

func sv4RandString(r *rand.Rand, max int) string {
	n := r.IntN(max + 1)
	var b strings.Builder
	for range n {
		b.WriteString(sv4Alphabet[r.IntN(len(sv4Alphabet))])
	}
	return b.String()
}

var (
	sv4Regions   = []string{"us-east-1", "eu-west-1", "auto", "cn-north-1", "ap-southeast-2", "weird region/+", ""}
	sv4Endpoints = []struct{ scheme, host, base string }{
		{"https", "s3.eu-west-1.amazonaws.com", ""},
		{"https", "s3.amazonaws.com:443", ""},
		{"http", "127.0.0.1:7070", ""},
		{"http", "localhost:80", "/base path"},
		{"https", "storage.googleapis.com", ""},
		{"http", "[::1]:9000", ""},
		{"https", "[::1]:443", "/a/b"},
		{"http", "minio.local", "/s3+x/é"},
		{"HTTP", "Example.COM:80", ""},
	}
	sv4Buckets = []string{"examplebucket", "b", "my.bucket-1", "123"}
)

// sv4RandCase draws one case: addressing, endpoint, region, key, time,
// TTL, session token, method, SSE-C.
func sv4RandCase(r *rand.Rand) *sv4Case {
	ep := sv4Endpoints[r.IntN(len(sv4Endpoints))]
	bucket := sv4Buckets[r.IntN(len(sv4Buckets))]
	c := &sv4Case{cfg: SigV4Config{Scheme: ep.scheme, Region: sv4Regions[r.IntN(len(sv4Regions))]}}
	if r.IntN(2) == 0 { // path-style
		c.cfg.Host, c.cfg.Path = ep.host, ep.base+"/"+bucket+"/"
	} else { // virtual-hosted
		c.cfg.Host, c.cfg.Path = bucket+"."+ep.host, ep.base+"/"
		if strings.HasPrefix(ep.host, "[") {
			c.cfg.Host = ep.host
		}
	}
	var raw [32]byte
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	sum := md5.Sum(raw[:])
	c.cfg.SSECKey, c.cfg.SSECKeyMD5 = base64.StdEncoding.EncodeToString(raw[:]), base64.StdEncoding.EncodeToString(sum[:])
	// A small set of access keys, each with its own secret: the SDK
	// caches its derived key per access key id.
	id := r.IntN(8)
	c.req = SigV4Request{
		Method:          []string{"GET", "HEAD"}[r.IntN(2)],
		Key:             sv4RandString(r, 12),
		At:              time.Unix(946684800+r.Int64N(100*365*86400), r.Int64N(1e9)).In(time.FixedZone("x", r.IntN(50000)-25000)),
		Expires:         1 + r.Int64N(604800),
		AccessKeyID:     "AKID" + strconv.Itoa(id) + []string{"", "/x", "+é"}[id%3],
		SecretAccessKey: "secret/" + strconv.Itoa(id) + "+=",
		SSEC:            r.IntN(3) == 0,
	}
	if r.IntN(2) == 0 {
		c.req.SessionToken = sv4RandString(r, 40)
	}
	return c
}

// sv4Compare signs c with both and reports a difference.
func sv4Compare(t testing.TB, sdk *v4.Signer, c *sv4Case) {
	t.Helper()
	want, wantH := sdkPresign(t, sdk, c)
	s := NewSigV4(c.cfg)
	if got := s.Presign(&c.req); got != want {
		t.Fatalf("case %+v:\n got  %s\n want %s", *c, got, want)
	}
	if c.req.SSEC {
		got := http.Header(s.SSECHeaders())
		if len(got) != len(wantH) {
			t.Fatalf("SSE-C headers %v, want %v", got, wantH)
		}
		for k, v := range wantH {
			if len(got[k]) != 1 || len(v) != 1 || got[k][0] != v[0] {
				t.Fatalf("SSE-C header %s = %q, want %q", k, got[k], v)
			}
		}
	}
}

// TestSigV4MatchesSDK signs 100,000 random cases (200,000 with -long
// unset in CI is too slow on a shared box) with both signers and requires
// byte-identical URLs.
func TestSigV4MatchesSDK(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	sdk := newSDKSigner()
	for range n {
		sv4Compare(t, sdk, sv4RandCase(r))
	}
}

// TestSigV4OneSignerManyRequests reuses one SigV4 across days, secrets
// and SSE-C, as a source does: its cached day key must never leak into
// another day or secret.
func TestSigV4OneSignerManyRequests(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	cfg := SigV4Config{Scheme: "https", Host: "b.s3.eu-west-1.amazonaws.com", Path: "/", Region: "eu-west-1", SSECKey: "k", SSECKeyMD5: "m"}
	s := NewSigV4(cfg)
	base := time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC)
	at := base
	for i := range 5000 {
		// Half the time the instant of the request before (its cached
		// X-Amz-Date), a sub-second later.
		if r.IntN(2) == 0 {
			at = base.Add(time.Duration(r.IntN(7200)) * time.Second)
		} else {
			at = at.Add(time.Duration(r.IntN(1000)) * time.Microsecond)
		}
		c := &sv4Case{cfg: cfg, req: SigV4Request{
			Method: "GET", Key: sv4RandString(r, 6), At: at,
			Expires: 3600, AccessKeyID: "AKID", SecretAccessKey: "s" + strconv.Itoa(i%3), SSEC: i%2 == 0,
		}}
		want, _ := sdkPresign(t, newSDKSigner(), c)
		if got := s.Presign(&c.req); got != want {
			t.Fatalf("request %d:\n got  %s\n want %s", i, got, want)
		}
	}
}

// TestSigV4Allocs pins one presign at one allocation: the URL.
func TestSigV4Allocs(t *testing.T) {
	s := NewSigV4(SigV4Config{Scheme: "https", Host: "examplebucket.s3.eu-west-1.amazonaws.com", Path: "/", Region: "eu-west-1"})
	req := SigV4Request{Method: "GET", Key: "datasets/42/frames/000123.jpg", At: time.Now(), Expires: 3600,
		AccessKeyID: sv4AKID, SecretAccessKey: sv4Secret, SessionToken: "FwoGZXIvYXdzEJr//////////wEaDOpQ"}
	s.Presign(&req)
	if n := testing.AllocsPerRun(1000, func() { s.Presign(&req) }); n > 1 {
		t.Errorf("presign allocates %.0f times, want 1", n)
	}
}

// FuzzSigV4MatchesSDK runs the differential comparison on fuzzed keys,
// tokens, hosts, paths and regions.
func FuzzSigV4MatchesSDK(f *testing.F) {
	f.Add("test.txt", "", "examplebucket.s3.amazonaws.com", "/", "us-east-1", int64(1369353600), int64(86400), false, false)
	f.Add("datasets/42/é 日本/+%?.jpg", "tok/+=", "127.0.0.1:7070", "/bucket/", "auto", int64(1764547200), int64(1), true, true)
	f.Add("a//b", "x", "[::1]:443", "/p q/b/", "eu-west-1", int64(0), int64(604800), false, true)
	sdk := newSDKSigner()
	f.Fuzz(func(t *testing.T, key, token, host, path, region string, at, expires int64, head, ssec bool) {
		if host == "" || strings.ContainsAny(host, "/?#@%") || !strings.HasPrefix(path, "/") || at < 0 || at > 1<<40 {
			t.Skip()
		}
		// Only hosts url.Parse accepts reach a signer (setBase checks).
		if u, err := url.Parse("http://" + host); err != nil || u.Host != host {
			t.Skip()
		}
		c := &sv4Case{
			cfg: SigV4Config{Scheme: "http", Host: host, Path: path, Region: region, SSECKey: "a2V5", SSECKeyMD5: "bWQ1"},
			req: SigV4Request{Method: "GET", Key: key, At: time.Unix(at, 0), Expires: expires, AccessKeyID: "AKID",
				SecretAccessKey: "secret", SessionToken: token, SSEC: ssec},
		}
		if head {
			c.req.Method = "HEAD"
		}
		sv4Compare(t, sdk, c)
	})
}

// BenchmarkSigV4Presign is one presign with a warm day key.
func BenchmarkSigV4Presign(b *testing.B) {
	s := NewSigV4(SigV4Config{Scheme: "https", Host: "examplebucket.s3.eu-west-1.amazonaws.com", Path: "/", Region: "eu-west-1"})
	req := SigV4Request{Method: "GET", Key: "datasets/42/frames/000123.jpg", At: time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC),
		Expires: 3600, AccessKeyID: sv4AKID, SecretAccessKey: sv4Secret}
	b.ReportAllocs()
	for b.Loop() {
		req.At = req.At.Add(time.Second)
		s.Presign(&req)
	}
}

// BenchmarkSigV4SDK is the same presign through the SDK, for comparison.
func BenchmarkSigV4SDK(b *testing.B) {
	sdk := newSDKSigner()
	c := &sv4Case{cfg: SigV4Config{Scheme: "https", Host: "examplebucket.s3.eu-west-1.amazonaws.com", Path: "/", Region: "eu-west-1"},
		req: SigV4Request{Method: "GET", Key: "datasets/42/frames/000123.jpg", At: time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC),
			Expires: 3600, AccessKeyID: sv4AKID, SecretAccessKey: sv4Secret}}
	b.ReportAllocs()
	for b.Loop() {
		c.req.At = c.req.At.Add(time.Second)
		sdkPresign(b, sdk, c)
	}
}

// BenchmarkSigV4PresignWindow is the edge's miss: many keys signed at one
// instant (the start of the signing window).
func BenchmarkSigV4PresignWindow(b *testing.B) {
	s := NewSigV4(SigV4Config{Scheme: "https", Host: "examplebucket.s3.eu-west-1.amazonaws.com", Path: "/", Region: "eu-west-1"})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "datasets/42/frames/" + strconv.Itoa(100000+i) + ".jpg"
	}
	req := SigV4Request{Method: "GET", At: time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC),
		Expires: 3600, AccessKeyID: sv4AKID, SecretAccessKey: sv4Secret}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req.Key = keys[i%len(keys)]
		i++
		s.Presign(&req)
	}
}

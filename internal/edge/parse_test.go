package edge

import (
	"context"
	"errors"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/edgeproxy/edge/internal/auth"
)

var refTests = []struct {
	in          string
	source, key string
	err         error
}{
	{"src/key", "src", "key", nil},
	{"src/a/b/c.jpg", "src", "a/b/c.jpg", nil},
	{"src/a%20b", "src", "a b", nil},
	{"src/a+b", "src", "a+b", nil},
	{"src/%2Bx", "src", "+x", nil},
	{"src/a%2Fb", "src", "a/b", nil},
	{"src/%E7%8C%AB.jpg", "src", "猫.jpg", nil},
	{"src/a%252e%252e", "src", "a%2e%2e", nil},
	{"src/%252e%252e", "src", "%2e%2e", nil},
	{"my%2Dsrc/k", "my-src", "k", nil},
	{"src/...", "src", "...", nil},
	{"src/.hidden", "src", ".hidden", nil},
	{"src/a..b/c.", "src", "a..b/c.", nil},
	{"src/a/", "src", "a/", nil},
	{"src/(1)%20%26%3D", "src", "(1) &=", nil},
	{"src/a&b=c", "src", "a&b=c", nil},
	{"src", "", "", errNoSource},
	{"/k", "", "", errNoSource},
	{"", "", "", errNoSource},
	{"src/", "", "", errEmptyKey},
	{"src/.", "", "", errDotSegment},
	{"src/..", "", "", errDotSegment},
	{"src/../etc/passwd", "", "", errDotSegment},
	{"src/a/..", "", "", errDotSegment},
	{"src/a/./b", "", "", errDotSegment},
	{"src/%2e%2e", "", "", errDotSegment},
	{"src/%2E%2e/x", "", "", errDotSegment},
	{"src/.%2e", "", "", errDotSegment},
	{"src/a%2F..%2Fb", "", "", errDotSegment},
	{"src/a%5C..%5Cb", "", "", errDotSegment},
	{"src/..%5Cx", "", "", errDotSegment},
	{"src/a%00", "", "", errNUL},
	{"src/%00", "", "", errNUL},
	{"src/%ff", "", "", errUTF8},
	{"src/%c0%ae%c0%ae", "", "", errUTF8},
	{"src/%ed%a0%80", "", "", errUTF8}, // a UTF-16 surrogate
	{"src/%zz", "", "", errEscape},
	{"src/%", "", "", errEscape},
	{"src/a%2", "", "", errEscape},
	{"%zz/k", "", "", errEscape},
}

func TestParseRef(t *testing.T) {
	for _, tt := range refTests {
		source, key, err := parseRef(tt.in)
		if !errors.Is(err, tt.err) || source != tt.source || key != tt.key {
			t.Errorf("parseRef(%q) = %q, %q, %v; want %q, %q, %v", tt.in, source, key, err, tt.source, tt.key, tt.err)
		}
	}
}

// checkKey asserts what every accepted key must satisfy: valid UTF-8, no
// NUL, no '.' or '..' segment (with either separator), and under every
// prefix it stays there once cleaned.
func checkKey(t *testing.T, key string) {
	t.Helper()
	if key == "" || !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0 {
		t.Fatalf("accepted key %q: empty, invalid UTF-8 or NUL", key)
	}
	for _, sep := range []string{"/", "\\"} {
		for _, seg := range strings.Split(key, sep) {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted key %q has a %q segment", key, seg)
			}
		}
	}
	for _, prefix := range []string{"files/", "a/b/"} {
		clean := path.Clean(prefix + key)
		if clean != strings.TrimSuffix(prefix, "/") && !strings.HasPrefix(clean, prefix) {
			t.Fatalf("key %q leaves prefix %q: %q", key, prefix, clean)
		}
		if clean2 := path.Clean(strings.ReplaceAll(prefix+key, "\\", "/")); clean2 != strings.TrimSuffix(prefix, "/") && !strings.HasPrefix(clean2, prefix) {
			t.Fatalf("key %q leaves prefix %q with '\\' as separator: %q", key, prefix, clean2)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, tt := range refTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		source, key, err := parseRef(in)
		if err != nil {
			return
		}
		if source == "" {
			t.Fatalf("parseRef(%q): empty source accepted", in)
		}
		checkKey(t, key)
	})
}

func BenchmarkParseRef(b *testing.B) {
	for _, in := range []string{"customer-a/datasets/42/frames/000123.jpg", "customer-a/datasets/42/a%20b%2B(c).jpg"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := parseRef(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var storageURLTests = []struct {
	in   string
	want Location
	err  bool
}{
	{"s3://bkt/a/b.jpg", Location{Provider: "s3", Bucket: "bkt", Key: "a/b.jpg"}, false},
	{"s3://bkt/a b%20c.jpg", Location{Provider: "s3", Bucket: "bkt", Key: "a b%20c.jpg"}, false},
	{"S3://bkt/k", Location{Provider: "s3", Bucket: "bkt", Key: "k"}, false},
	{"gs://bkt/k", Location{Provider: "gcs", Bucket: "bkt", Key: "k"}, false},
	{"https://bkt.s3.eu-west-1.amazonaws.com/a/b.jpg", Location{Provider: "s3", Bucket: "bkt", Host: "bkt.s3.eu-west-1.amazonaws.com", Scheme: "https", Key: "a/b.jpg"}, false},
	{"https://bkt.s3.amazonaws.com/a%20b%2Bc", Location{Provider: "s3", Bucket: "bkt", Host: "bkt.s3.amazonaws.com", Scheme: "https", Key: "a b+c"}, false},
	{"https://bkt.s3-eu-west-1.amazonaws.com/k", Location{Provider: "s3", Bucket: "bkt", Host: "bkt.s3-eu-west-1.amazonaws.com", Scheme: "https", Key: "k"}, false},
	{"https://my.dotted.bkt.s3.us-east-2.amazonaws.com/k", Location{Provider: "s3", Bucket: "my.dotted.bkt", Host: "my.dotted.bkt.s3.us-east-2.amazonaws.com", Scheme: "https", Key: "k"}, false},
	{"https://s3.eu-west-1.amazonaws.com/bkt/a/b", Location{Provider: "s3", Bucket: "bkt", Host: "s3.eu-west-1.amazonaws.com", Scheme: "https", Key: "a/b"}, false},
	{"https://s3.amazonaws.com/bkt/k", Location{Provider: "s3", Bucket: "bkt", Host: "s3.amazonaws.com", Scheme: "https", Key: "k"}, false},
	{"https://s3-us-west-2.amazonaws.com/bkt/k", Location{Provider: "s3", Bucket: "bkt", Host: "s3-us-west-2.amazonaws.com", Scheme: "https", Key: "k"}, false},
	{"https://storage.googleapis.com/bkt/k", Location{Provider: "gcs", Bucket: "bkt", Host: "storage.googleapis.com", Scheme: "https", Key: "k"}, false},
	{"https://bkt.storage.googleapis.com/k", Location{Provider: "gcs", Bucket: "bkt", Host: "bkt.storage.googleapis.com", Scheme: "https", Key: "k"}, false},
	{"https://acct.blob.core.windows.net/cont/dir/blob.png", Location{Provider: "azure", Bucket: "cont", Account: "acct", Host: "acct.blob.core.windows.net", Scheme: "https", Key: "dir/blob.png"}, false},
	{"http://127.0.0.1:9000/bkt/k%20x", Location{Host: "127.0.0.1:9000", Scheme: "http", Path: "bkt/k x"}, false},
	{"http://bkt.localhost:9000/k", Location{Host: "bkt.localhost:9000", Scheme: "http", Path: "k"}, false},
	{"s3://bkt/", Location{}, true},
	{"s3://bkt", Location{}, true},
	{"s3:///k", Location{}, true},
	{"s3://bkt/a/../b", Location{}, true},
	{"s3://bkt/a\x00", Location{}, true},
	{"https://bkt.s3.amazonaws.com/", Location{}, true},
	{"https://bkt.s3.amazonaws.com/%2e%2e/x", Location{}, true},
	{"https://bkt.s3.amazonaws.com/a%zz", Location{}, true},
	{"https://bkt.s3.amazonaws.com/%ff", Location{}, true},
	{"https://s3.amazonaws.com/bkt", Location{}, true},
	{"https://ec2.amazonaws.com/bkt/k", Location{}, true},
	{"https://u:p@bkt.s3.amazonaws.com/k", Location{}, true},
	{"ftp://bkt/k", Location{}, true},
	{"bkt/k", Location{}, true},
	{"http://127.0.0.1:9000/bkt/a%00", Location{}, true},
	{"https:opaque", Location{}, true},
}

func TestParseStorageURL(t *testing.T) {
	for _, tt := range storageURLTests {
		got, err := ParseStorageURL(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseStorageURL(%q) =\n  %+v, %v\nwant %+v, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// resolveServer is a server with sources on AWS and on custom endpoints,
// for resolveLocation.
var resolveServer = sync.OnceValue(func() *Server {
	cfg := &Config{
		Auth: auth.Config{Keys: []auth.KeyConfig{{Alg: "HS256", Secret: testSecret}}},
		Sources: []SourceConfig{
			s3Source("aws", "bkt", "images/"),
			s3Source("aws-root", "other", ""),
			s3Source("minio", "bkt", ""),
			s3Source("gw", "bkt", "p/"),
			s3Source("vhost", "vb", ""),
		},
	}
	cfg.Sources[2].Endpoint = "http://127.0.0.1:9000"
	cfg.Sources[3].Endpoint = "https://gw.example.com/s3/"
	cfg.Sources[4].Endpoint = "http://localhost:9000"
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	s, err := New(context.Background(), cfg, Options{})
	if err != nil {
		panic(err)
	}
	return s
})

func TestResolveLocation(t *testing.T) {
	s := resolveServer()
	tests := []struct{ in, source, key string }{
		{"https://bkt.s3.eu-west-1.amazonaws.com/images/a.jpg", "aws", "a.jpg"},
		{"https://s3.amazonaws.com/bkt/images/a/b.jpg", "aws", "a/b.jpg"},
		{"https://bkt.s3.amazonaws.com/outside.jpg", "", ""},            // not under the prefix; minio has an endpoint
		{"https://bkt.s3.amazonaws.com/images/", "", ""},                // the prefix itself
		{"s3://bkt/images/a.jpg", "aws", "a.jpg"},                       // the longest prefix wins
		{"s3://bkt/p/a.jpg", "gw", "a.jpg"},                             // s3:// names no host
		{"s3://bkt/a.jpg", "minio", "a.jpg"},                            // the only source whose prefix matches
		{"https://other.s3.amazonaws.com/x/y", "aws-root", "x/y"},       // empty prefix
		{"http://127.0.0.1:9000/bkt/a%20b.jpg", "minio", "a b.jpg"},     // path-style on the endpoint
		{"http://127.0.0.1:9000/other/a.jpg", "", ""},                   // other bucket on the endpoint
		{"http://127.0.0.1:9001/bkt/a.jpg", "", ""},                     // other port
		{"https://gw.example.com/s3/bkt/p/a.jpg", "gw", "a.jpg"},        // endpoint with a path
		{"https://gw.example.com/bkt/p/a.jpg", "", ""},                  // without the endpoint's path
		{"http://vb.localhost:9000/k/1.png", "vhost", "k/1.png"},        // virtual-hosted on the endpoint
		{"http://localhost:9000/vb/k/1.png", "vhost", "k/1.png"},        // path-style on the same endpoint
		{"http://vb.localhost:9001/k/1.png", "", ""},                    // other port
		{"http://127.0.0.1:9000/bkt/a/%2e%2e/b", "", ""},                // a dot segment inside the endpoint path
		{"https://vb.s3.amazonaws.com/k/1.png", "", ""},                 // AWS's vb is not the endpoint's vb
		{"https://storage.googleapis.com/bkt/images/a.jpg", "", ""},     // another provider
		{"https://acct.blob.core.windows.net/bkt/images/a.jpg", "", ""}, // another provider
	}
	for _, tt := range tests {
		loc, err := ParseStorageURL(tt.in)
		if err != nil {
			if tt.source != "" {
				t.Errorf("ParseStorageURL(%q): %v", tt.in, err)
			}
			continue
		}
		src, key := s.resolveLocation(loc)
		name := ""
		if src != nil {
			name = src.Name
		}
		if name != tt.source || key != tt.key {
			t.Errorf("resolve %q = %q, %q; want %q, %q", tt.in, name, key, tt.source, tt.key)
		}
	}
}

func FuzzParseStorageURL(f *testing.F) {
	for _, tt := range storageURLTests {
		f.Add(tt.in)
	}
	f.Add("http://127.0.0.1:9000/bkt/a%2F..%2Fb")
	f.Add("http://vb.localhost:9000/..%2Fx")
	f.Add("https://gw.example.com/s3/bkt/p/%2e%2e/x")
	s := resolveServer()
	f.Fuzz(func(t *testing.T, in string) {
		loc, err := ParseStorageURL(in)
		if err != nil {
			return
		}
		if loc.Provider != "" {
			if loc.Bucket == "" {
				t.Fatalf("ParseStorageURL(%q): no bucket: %+v", in, loc)
			}
			checkKey(t, loc.Key)
		} else if strings.IndexByte(loc.Path, 0) >= 0 {
			t.Fatalf("ParseStorageURL(%q): NUL in path", in)
		}
		src, key := s.resolveLocation(loc)
		if src == nil {
			return
		}
		checkKey(t, key)
		checkKey(t, src.Prefix+key)
		if loc.Provider != "" && loc.Key != src.Prefix+key {
			t.Fatalf("resolve %q: %q + %q is not the URL's key %q", in, src.Prefix, key, loc.Key)
		}
	})
}

var testPatterns = []string{"https://*.segments.ai", "http://localhost:*", "https://app.example.com", "http://*.localhost:*", "https://exact.example.com:8443"}

func TestOriginMatch(t *testing.T) {
	var ps []originPattern
	for _, p := range testPatterns {
		op, err := parseOriginPattern(p)
		if err != nil {
			t.Fatalf("parseOriginPattern(%q): %v", p, err)
		}
		ps = append(ps, op)
	}
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://app.segments.ai", true},
		{"https://a.b.segments.ai", true},
		{"https://x-1.segments.ai", true},
		{"https://segments.ai", false},
		{"https://.segments.ai", false},
		{"https://app.segments.ai.evil.com", false},
		{"https://segments.ai.evil.com", false},
		{"https://evil.com/.segments.ai", false},
		{"https://evil.com?.segments.ai", false},
		{"https://evil.com#.segments.ai", false},
		{"https://user@x.segments.ai", false},
		{"https://x.segments.ai:443", false},
		{"https://x.segments.ai/", false},
		{"https://X.segments.ai", false},
		{"http://x.segments.ai", false},
		{"http://localhost:3000", true},
		{"http://localhost", true},
		{"http://localhost:1.evil.com", false},
		{"http://localhost:3000@evil.com", false},
		{"http://localhost:3000/", false},
		{"http://localhost:", false},
		{"http://localhost:123456", false},
		{"http://localhost.evil.com:80", false},
		{"http://app.localhost:5173", true},
		{"http://a.b.localhost", true},
		{"http://evil.com:80.localhost:1", false},
		{"https://app.example.com", true},
		{"https://app.example.com:443", false},
		{"https://app.example.com.evil.com", false},
		{"https://exact.example.com:8443", true},
		{"https://exact.example.com", false},
		{"null", false},
		{"", false},
		{"*", false},
	}
	for _, tt := range tests {
		if got := matchOrigin(ps, tt.origin); got != tt.want {
			t.Errorf("matchOrigin(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	for _, bad := range []string{"*", "https://*", "https://*.com", "https://a.*.com", "ftp://a.com", "https://a.com/", "https://a.com:x", "https://a.com:", "a.com", "https://u@a.com", "https://*a.com"} {
		if _, err := parseOriginPattern(bad); err == nil {
			t.Errorf("parseOriginPattern(%q) passed", bad)
		}
	}
}

// FuzzOriginMatch: whatever the pattern and origin, a match means the
// origin is a bare scheme://host[:port] of the pattern's scheme, whose host
// is the pattern's or a DNS-label subdomain of its wildcard, and whose port
// is the pattern's or, for a * port, digits.
func FuzzOriginMatch(f *testing.F) {
	for _, p := range testPatterns {
		for _, o := range []string{"https://app.segments.ai", "http://localhost:1.evil.com", "https://evil.com/.segments.ai", "http://localhost:3000", "https://exact.example.com:8443", "http://a.b.localhost:1"} {
			f.Add(p, o)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		p, err := parseOriginPattern(pattern)
		if err != nil || !matchOrigin([]originPattern{p}, origin) {
			return
		}
		u, err := url.Parse(origin)
		if err != nil {
			t.Fatalf("pattern %q matched %q, which does not parse: %v", pattern, origin, err)
		}
		if u.Scheme != p.scheme || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
			origin != u.Scheme+"://"+u.Host {
			t.Fatalf("pattern %q matched %q, which is not a bare origin: %#v", pattern, origin, u)
		}
		host, port := u.Hostname(), u.Port()
		if strings.HasPrefix(u.Host, "[") {
			host = "[" + host + "]"
		}
		switch {
		case !p.wildHost:
			if !strings.EqualFold(host, p.host) {
				t.Fatalf("pattern %q matched %q: host %q", pattern, origin, host)
			}
		default:
			sub, ok := strings.CutSuffix(host, p.host)
			if !ok || sub == "" || !validHostLabels(sub) {
				t.Fatalf("pattern %q matched %q: host %q is not a subdomain of %q", pattern, origin, host, p.host)
			}
		}
		if p.wildPort {
			if port != "" && !allDigits(port) {
				t.Fatalf("pattern %q matched %q: port %q", pattern, origin, port)
			}
		} else if !p.wildHost && p.exactText != "" {
			if origin != p.exactText {
				t.Fatalf("exact pattern %q matched %q", pattern, origin)
			}
		} else if port != p.port {
			t.Fatalf("pattern %q matched %q: port %q, want %q", pattern, origin, port, p.port)
		}
	})
}

func TestEscapeKeyRoundTrip(t *testing.T) {
	for _, k := range []string{"a b+c%d(e)&f=g", "猫/犬.jpg", "~-._", "a/b/c", "?#[]@!$'*,;:"} {
		src, key, err := parseRef("s/" + escapeKey(k))
		if err != nil || src != "s" || key != k {
			t.Errorf("parseRef(escapeKey(%q)) = %q, %q, %v", k, src, key, err)
		}
	}
}

package edge

// Redirect mode against a real S3 server: versitygw checks SigV4 presigned
// signatures and expiry the way AWS does, so a URL it serves is a URL the
// edge signed correctly, and one it refuses proves the signature binds what
// it should.

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
)

const (
	vBucket  = "edge-plain"
	vDotted  = "edge.dotted.bucket"
	vPrefix  = "data/"
	vPrefixB = "data/sub dir/"
)

// vKeys are the stored objects' keys, relative to vPrefix: awkward
// characters all, each must sign and fetch.
var vKeys = []string{
	"plain.txt",
	"a b.txt",
	"a+b.txt",
	"100%.txt",
	"100%25.txt",
	"猫/ü é.txt",
	"(1) [2] {3}.png",
	"a&b=c.txt",
	"q?x#y.txt",
	"semi;colon,comma:colon@at!bang$dollar'quote*star.txt",
	"tilde~under_score-dash.dot.txt",
	"sub dir/deep/k.bin",
	"emoji 🐈.jpg",
}

func vBody(key string) []byte { return []byte("body of " + key + " \x00\xff end") }

// vServer is a versitygw with both buckets filled with vKeys under vPrefix,
// and an edge in front of it whose clock is the wall clock at start.
type vServer struct {
	v *testenv.Versity
	*env
	tok    string
	client *http.Client
}

func vSource(v *testenv.Versity, name, bucket, endpoint, addressing, prefix string) SourceConfig {
	return SourceConfig{
		Name: name,
		Config: signer.Config{
			Provider: signer.ProviderS3, Bucket: bucket, Region: v.Region, Endpoint: endpoint, Addressing: addressing,
			Credentials: signer.Credentials{Type: "static", AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey},
		},
		Prefix: prefix,
		Mode:   ModeRedirect,
		URLTTL: time.Hour,
	}
}

func vConfig(v *testenv.Versity) *Config {
	localhost := "http://localhost:" + strconv.Itoa(v.Port)
	return &Config{
		Auth: auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Sources: []SourceConfig{
			vSource(v, "auto", vBucket, v.Endpoint, "auto", ""),
			vSource(v, "path", vBucket, v.Endpoint, "path", vPrefix),
			vSource(v, "dotted", vDotted, v.Endpoint, "auto", vPrefix),
			vSource(v, "virtual", vBucket, localhost, "virtual", vPrefix),
			vSource(v, "deeper", vBucket, v.Endpoint, "path", vPrefixB),
		},
	}
}

func startVersity(t *testing.T) (*testenv.Versity, *Config) {
	t.Helper()
	v := testenv.StartVersity(t)
	for _, b := range []string{vBucket, vDotted} {
		v.CreateBucket(t, b)
		for _, k := range vKeys {
			v.Put(t, b, vPrefix+k, vBody(k))
		}
		v.Put(t, b, "outside.txt", []byte("outside"))
	}
	return v, vConfig(v)
}

// newVServer is an edge over v, its clock set to the wall clock.
func newVServer(t *testing.T, v *testenv.Versity, cfg *Config, now time.Time) *vServer {
	t.Helper()
	e := newEnv(t, cfg)
	e.clk.Set(now)
	var grants []auth.Grant
	for _, s := range cfg.Sources {
		grants = append(grants, grant(s.Name, ""))
	}
	return &vServer{v: v, env: e, tok: signHS(t, claimsAt(now, grants...)), client: testenv.LocalhostClient()}
}

// location asks the edge for target and returns the 302's Location.
func (s *vServer) location(t *testing.T, method, target string) string {
	t.Helper()
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	w := s.do(method, target+sep+"token="+s.tok, nil)
	loc, _ := wantRedirect(t, w, s.clk.Now())
	return loc
}

// fetch requests u from versitygw.
func (s *vServer) fetch(t *testing.T, method, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func (s *vServer) wantBody(t *testing.T, u string, want []byte) {
	t.Helper()
	code, _, body := s.fetch(t, "GET", u)
	if code != http.StatusOK || string(body) != string(want) {
		t.Errorf("GET %s\n= %d %q\nwant 200 %q", u, code, body, want)
	}
}

func (s *vServer) wantRefused(t *testing.T, what, u string) {
	t.Helper()
	code, _, body := s.fetch(t, "GET", u)
	if code != http.StatusForbidden {
		t.Errorf("%s: GET %s = %d, want 403\n%s", what, u, code, body)
	}
}

func TestVersityRedirect(t *testing.T) {
	v, cfg := startVersity(t)
	s := newVServer(t, v, cfg, time.Now())
	port := strconv.Itoa(v.Port)
	hosts := map[string]string{
		"auto":    "http://127.0.0.1:" + port + "/" + vBucket + "/", // an IP endpoint is path-style; no source prefix
		"path":    "http://127.0.0.1:" + port + "/" + vBucket + "/" + vPrefix,
		"dotted":  "http://127.0.0.1:" + port + "/" + vDotted + "/" + vPrefix, // auto: a dotted bucket goes path-style
		"virtual": "http://" + vBucket + ".localhost:" + port + "/" + vPrefix,
	}
	for _, source := range []string{"auto", "path", "dotted", "virtual"} {
		for _, key := range vKeys {
			t.Run(source+"/"+key, func(t *testing.T) {
				rel := key
				if source == "auto" {
					rel = vPrefix + key
				}
				loc := s.location(t, "GET", "/v1/s/"+source+"/"+escapeKey(rel))
				if want := hosts[source] + signer.EscapePath(rel) + "?"; !strings.HasPrefix(loc, want) {
					t.Errorf("Location = %s\nwant prefix %s", loc, want)
				}
				s.wantBody(t, loc, vBody(key))
			})
		}
	}
	t.Run("under a deeper prefix", func(t *testing.T) {
		loc := s.location(t, "GET", "/v1/s/deeper/deep/k.bin")
		s.wantBody(t, loc, vBody("sub dir/deep/k.bin"))
	})
	t.Run("missing object", func(t *testing.T) {
		// Redirect mode signs without asking storage; the store says 404.
		loc := s.location(t, "GET", "/v1/s/path/missing.txt")
		if code, _, _ := s.fetch(t, "GET", loc); code != http.StatusNotFound {
			t.Errorf("GET missing object = %d, want 404", code)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		for _, source := range []string{"path", "virtual", "dotted"} {
			loc := s.location(t, "HEAD", "/v1/s/"+source+"/a%20b.txt")
			code, h, _ := s.fetch(t, "HEAD", loc)
			if code != http.StatusOK || h.Get("Content-Length") != strconv.Itoa(len(vBody("a b.txt"))) {
				t.Errorf("%s: HEAD %s = %d %v", source, loc, code, h)
			}
			// The URL is pinned to its method.
			s.wantRefused(t, source+": GET with a HEAD URL", loc)
		}
	})
}

// tweak returns u with query parameter name's value replaced by f(value),
// leaving the rest of the raw URL as the edge wrote it.
func tweak(t *testing.T, u, name string, f func(string) string) string {
	t.Helper()
	i := strings.Index(u, name+"=")
	if i < 0 {
		t.Fatalf("no %s in %s", name, u)
	}
	start := i + len(name) + 1
	end := strings.IndexByte(u[start:], '&')
	if end < 0 {
		end = len(u) - start
	}
	return u[:start] + f(u[start:start+end]) + u[start+end:]
}

func flipHex(s string) string {
	b := []byte(s)
	last := len(b) - 1
	if b[last] == '0' {
		b[last] = '1'
	} else {
		b[last] = '0'
	}
	return string(b)
}

func TestVersityTampered(t *testing.T) {
	v, cfg := startVersity(t)
	s := newVServer(t, v, cfg, time.Now())
	for _, source := range []string{"path", "virtual"} {
		t.Run(source, func(t *testing.T) {
			loc := s.location(t, "GET", "/v1/s/"+source+"/a%20b.txt")
			s.wantBody(t, loc, vBody("a b.txt")) // the control
			s.wantRefused(t, "flipped signature", tweak(t, loc, "X-Amz-Signature", flipHex))
			s.wantRefused(t, "flipped first signature char", tweak(t, loc, "X-Amz-Signature", func(v string) string {
				if v[0] == 'a' {
					return "b" + v[1:]
				}
				return "a" + v[1:]
			}))
			s.wantRefused(t, "longer lifetime", tweak(t, loc, "X-Amz-Expires", func(string) string { return "3601" }))
			s.wantRefused(t, "longest lifetime", tweak(t, loc, "X-Amz-Expires", func(string) string { return "604800" }))
			s.wantRefused(t, "later date", tweak(t, loc, "X-Amz-Date", func(d string) string {
				tm, _ := time.Parse("20060102T150405Z", d)
				return tm.Add(time.Second).Format("20060102T150405Z")
			}))
			s.wantRefused(t, "other key", strings.Replace(loc, "/a%20b.txt?", "/a%2Bb.txt?", 1))
			s.wantRefused(t, "key outside the prefix", strings.Replace(loc, "/"+vPrefix+"a%20b.txt?", "/outside.txt?", 1))
			s.wantRefused(t, "added parameter", loc+"&response-content-type=text%2Fhtml")
			if code, _, _ := s.fetch(t, "GET", tweak(t, loc, "X-Amz-Signature", func(string) string { return "" })); code != 400 && code != 403 {
				t.Errorf("no signature: %d, want 400 or 403", code)
			}
		})
	}
	t.Run("other bucket", func(t *testing.T) {
		loc := s.location(t, "GET", "/v1/s/path/plain.txt")
		s.wantRefused(t, "other bucket", strings.Replace(loc, "/"+vBucket+"/", "/"+vDotted+"/", 1))
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := vConfig(v)
		bad.Sources[1].Credentials.SecretAccessKey = v.SecretKey + "x"
		s2 := newVServer(t, v, bad, time.Now())
		s2.wantRefused(t, "wrong secret", s2.location(t, "GET", "/v1/s/path/plain.txt"))
		bad = vConfig(v)
		bad.Sources[1].Credentials.AccessKeyID = "AKIDUNKNOWN"
		s3 := newVServer(t, v, bad, time.Now())
		s3.wantRefused(t, "unknown access key", s3.location(t, "GET", "/v1/s/path/plain.txt"))
	})
}

func TestVersityExpired(t *testing.T) {
	v, cfg := startVersity(t)
	for _, past := range []time.Duration{2 * time.Hour, 7 * 24 * time.Hour} {
		s := newVServer(t, v, vConfig(v), time.Now().Add(-past))
		loc := s.location(t, "GET", "/v1/s/path/plain.txt")
		if exp := urlExpiry(t, loc); !exp.Before(time.Now()) {
			t.Fatalf("URL signed %s ago expires at %s, in the future", past, exp)
		}
		s.wantRefused(t, fmt.Sprintf("signed %s ago", past), loc)
	}
	// A short url_ttl: fine at first, refused once it has passed.
	cfg.Sources[1].URLTTL = 2 * time.Second
	cfg.Sources[1].SigningWindow = time.Second
	start := time.Now().Truncate(time.Second)
	s := newVServer(t, v, cfg, start)
	loc := s.location(t, "GET", "/v1/s/path/plain.txt")
	s.wantBody(t, loc, vBody("plain.txt"))
	time.Sleep(time.Until(urlExpiry(t, loc).Add(1100 * time.Millisecond)))
	s.wantRefused(t, "after its url_ttl", loc)
}

// TestVersityDeterministic: two edges (separate New, same config, same
// clock window) hand out byte-identical URLs; later in the window the
// same, in the next window a new one.
func TestVersityDeterministic(t *testing.T) {
	v, _ := startVersity(t)
	start := time.Now().Truncate(30 * time.Minute)
	a := newVServer(t, v, vConfig(v), start.Add(time.Second))
	b := newVServer(t, v, vConfig(v), start.Add(17*time.Minute))
	for _, source := range []string{"auto", "path", "dotted", "virtual"} {
		target := "/v1/s/" + source + "/" + escapeKey("a b.txt")
		if source == "auto" {
			target = "/v1/s/auto/" + escapeKey(vPrefix+"a b.txt")
		}
		la := a.location(t, "GET", target)
		lb := b.location(t, "GET", target)
		if la != lb {
			t.Errorf("%s: two edges disagree:\n%s\n%s", source, la, lb)
		}
		a.wantBody(t, la, vBody("a b.txt"))
		a.clk.Set(start.Add(29 * time.Minute))
		if again := a.location(t, "GET", target); again != la {
			t.Errorf("%s: later in the window:\n%s\nwant %s", source, again, la)
		}
		a.clk.Set(start.Add(30 * time.Minute))
		if next := a.location(t, "GET", target); next == la {
			t.Errorf("%s: the next window reuses %s", source, la)
		}
		a.clk.Set(start.Add(time.Second))
	}
	// A restart (a new server, an empty cache) within the window: the
	// same URL again.
	c := newVServer(t, v, vConfig(v), start.Add(29*time.Minute+59*time.Second))
	if lc, la := c.location(t, "GET", "/v1/s/path/plain.txt"), a.location(t, "GET", "/v1/s/path/plain.txt"); lc != la {
		t.Errorf("after a restart:\n%s\nwant %s", lc, la)
	}
}

// TestVersityStorageURLs: /v1/u resolves storage URLs on the configured
// custom endpoint, path-style and virtual-hosted, and s3://, to the source
// that holds them; the URL it redirects to fetches the object.
func TestVersityStorageURLs(t *testing.T) {
	v, cfg := startVersity(t)
	s := newVServer(t, v, cfg, time.Now())
	port := strconv.Itoa(v.Port)
	tests := []struct {
		name, raw, key string
	}{
		{"path-style on the endpoint", "http://127.0.0.1:" + port + "/" + vBucket + "/" + vPrefix + "a%20b.txt", "a b.txt"},
		{"path-style, awkward key", "http://127.0.0.1:" + port + "/" + vBucket + "/" + vPrefix + signer.EscapePath("(1) [2] {3}.png"), "(1) [2] {3}.png"},
		{"path-style, deeper prefix", "http://127.0.0.1:" + port + "/" + vBucket + "/" + vPrefixB + "deep/k.bin", "sub dir/deep/k.bin"},
		{"path-style, dotted bucket", "http://127.0.0.1:" + port + "/" + vDotted + "/" + vPrefix + "a%2Bb.txt", "a+b.txt"},
		{"path-style, no prefix source", "http://127.0.0.1:" + port + "/" + vBucket + "/" + vPrefix + "100%25.txt", "100%.txt"},
		{"virtual-hosted on the endpoint", "http://" + vBucket + ".localhost:" + port + "/" + vPrefix + "%E7%8C%AB/%C3%BC%20%C3%A9.txt", "猫/ü é.txt"},
		{"path-style on localhost", "http://localhost:" + port + "/" + vBucket + "/" + vPrefix + "plain.txt", "plain.txt"},
		{"s3 scheme", "s3://" + vBucket + "/" + vPrefix + "a&b=c.txt", "a&b=c.txt"},
		{"s3 scheme, dotted", "s3://" + vDotted + "/" + vPrefix + "q?x#y.txt", "q?x#y.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := s.location(t, "GET", "/v1/u?url="+url.QueryEscape(tt.raw))
			if !strings.Contains(loc, signer.EscapePath(tt.key)+"?") {
				t.Errorf("Location %s does not name %q", loc, tt.key)
			}
			s.wantBody(t, loc, vBody(tt.key))
		})
	}
	for _, raw := range []string{
		"http://127.0.0.1:" + port + "/other-bucket/" + vPrefix + "plain.txt",
		"http://127.0.0.1:1/" + vBucket + "/" + vPrefix + "plain.txt",
		"https://" + vBucket + ".s3.amazonaws.com/" + vPrefix + "plain.txt", // AWS's bucket of that name is not this one
		"http://other.localhost:" + port + "/" + vPrefix + "plain.txt",
	} {
		wantError(t, s.do("GET", "/v1/u?url="+url.QueryEscape(raw)+"&token="+s.tok, nil), http.StatusNotFound, "unknown_bucket", s.tok)
	}
}

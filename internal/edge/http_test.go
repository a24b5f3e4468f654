package edge

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/golang-jwt/jwt/v5"
)

var maxAgeRE = regexp.MustCompile(`^private, max-age=(\d+)$`)

// urlExpiry reads when a presigned S3 URL stops working.
func urlExpiry(t testing.TB, loc string) time.Time {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	q := u.Query()
	if exp := q.Get("exp"); exp != "" { // an edge-signed /v1/f URL
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			t.Fatalf("exp %q: %v", exp, err)
		}
		return time.Unix(n, 0)
	}
	date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date in %q: %v", loc, err)
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil {
		t.Fatalf("X-Amz-Expires in %q: %v", loc, err)
	}
	return date.Add(time.Duration(secs) * time.Second)
}

// wantRedirect checks a 302 answer as PRODUCT.md describes it and returns
// its Location and max-age.
func wantRedirect(t testing.TB, w *httptest.ResponseRecorder, now time.Time) (string, int) {
	t.Helper()
	if w.Code != http.StatusFound {
		t.Fatalf("status = %d, want 302; body %s", w.Code, w.Body)
	}
	loc := w.Header().Get("Location")
	if loc == "" {
		t.Fatal("302 without Location")
	}
	m := maxAgeRE.FindStringSubmatch(w.Header().Get("Cache-Control"))
	if m == nil {
		t.Fatalf("Cache-Control = %q, want private, max-age=N", w.Header().Get("Cache-Control"))
	}
	maxAge, _ := strconv.Atoi(m[1])
	if left := urlExpiry(t, loc).Sub(now); time.Duration(maxAge)*time.Second > left {
		t.Errorf("max-age=%d outlives the URL, which has %s left", maxAge, left)
	}
	if got := w.Header().Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q, want no-referrer", got)
	}
	return loc, maxAge
}

func TestRedirect(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)
	tests := []struct {
		name, target, wantPrefix string
	}{
		{"virtual-hosted", "/v1/s/customer-a/cats/1.jpg", "https://acme-images.s3.eu-west-1.amazonaws.com/images/cats/1.jpg?"},
		{"dotted bucket goes path-style", "/v1/s/customer-b/f/0001.png", "https://s3.eu-west-1.amazonaws.com/partner.frames/f/0001.png?"},
		{"escaped key decoded once", "/v1/s/customer-a/a%20b%2Bc%25d%28e%29.jpg", "https://acme-images.s3.eu-west-1.amazonaws.com/images/a%20b%2Bc%25d%28e%29.jpg?"},
		{"double escape stays literal", "/v1/s/customer-a/%252e%252e", "https://acme-images.s3.eu-west-1.amazonaws.com/images/%252e%252e?"},
		{"unicode", "/v1/s/customer-a/%E7%8C%AB.jpg", "https://acme-images.s3.eu-west-1.amazonaws.com/images/%E7%8C%AB.jpg?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.get(tt.target + "?token=" + tok)
			loc, maxAge := wantRedirect(t, w, e.clk.Now())
			if !strings.HasPrefix(loc, tt.wantPrefix) {
				t.Errorf("Location = %s\nwant prefix %s", loc, tt.wantPrefix)
			}
			q := mustQuery(t, loc)
			if got, want := q.Get("X-Amz-Date"), t0.Format("20060102T150405Z"); got != want {
				t.Errorf("X-Amz-Date = %s, want the window start %s", got, want)
			}
			if got := q.Get("X-Amz-Expires"); got != "3600" {
				t.Errorf("X-Amz-Expires = %s, want 3600", got)
			}
			if q.Get("X-Amz-Signature") == "" || !strings.Contains(q.Get("X-Amz-Credential"), testAKID+"/") {
				t.Errorf("Location lacks signature or credential: %s", loc)
			}
			if maxAge != 1800 {
				t.Errorf("max-age = %d at the window start, want 1800 (url_ttl 1h, window 30m)", maxAge)
			}
			if w.Body.Len() > 0 && strings.Contains(w.Body.String(), "X-Amz-Signature") {
				t.Errorf("302 body repeats the signed URL: %s", w.Body)
			}
		})
	}
}

func mustQuery(t testing.TB, loc string) url.Values {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestRedirectMaxAge follows one URL through its signing window: the URL
// stays the same, max-age shrinks and never outlives the URL, and the next
// window brings a new URL.
func TestRedirectMaxAge(t *testing.T) {
	for _, ttl := range []time.Duration{time.Hour, 3 * time.Minute, 7 * 24 * time.Hour} {
		t.Run(ttl.String(), func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Sources[0].URLTTL = ttl
			e := newEnv(t, cfg)
			window := cfg.Sources[0].SigningWindow
			// Windows start at multiples of their length since the zero
			// time, the same on every replica.
			start := t0.Truncate(window)
			c := claims(grant("customer-a", ""))
			c["iat"] = start.Add(-time.Minute).Unix()
			c["exp"] = t0.Add(30 * 24 * time.Hour).Unix()
			target := "/v1/s/customer-a/cats/1.jpg?token=" + signHS(t, c)
			e.clk.Set(start)
			first, _ := wantRedirect(t, e.get(target), e.clk.Now())
			if got, want := mustQuery(t, first).Get("X-Amz-Date"), start.Format("20060102T150405Z"); got != want {
				t.Errorf("X-Amz-Date = %s, want the window start %s", got, want)
			}
			for _, off := range []time.Duration{0, time.Second, window / 3, window / 2, window - time.Minute - time.Second, window - time.Minute, window - time.Second} {
				e.clk.Set(start.Add(off))
				loc, maxAge := wantRedirect(t, e.get(target), e.clk.Now())
				if loc != first {
					t.Errorf("at +%s the URL changed within its window:\n%s\n%s", off, first, loc)
				}
				if maxAge < 0 || time.Duration(maxAge)*time.Second > window-off {
					t.Errorf("at +%s max-age = %d, want within [0, %s]", off, maxAge, window-off)
				}
			}
			e.clk.Set(start.Add(window))
			next, _ := wantRedirect(t, e.get(target), e.clk.Now())
			if next == first {
				t.Errorf("the next window reuses the old URL %s", next)
			}
			if got, want := mustQuery(t, next).Get("X-Amz-Date"), start.Add(window).Format("20060102T150405Z"); got != want {
				t.Errorf("next window X-Amz-Date = %s, want %s", got, want)
			}
		})
	}
}

func TestHeadRedirect(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)
	get, _ := wantRedirect(t, e.get("/v1/s/customer-a/x.jpg?token="+tok), t0)
	w := e.do("HEAD", "/v1/s/customer-a/x.jpg?token="+tok, nil)
	head, _ := wantRedirect(t, w, t0)
	if head == get {
		t.Errorf("HEAD got the GET URL; a SigV4 URL is signed for one method")
	}
	if w.Body.Len() != 0 {
		t.Errorf("HEAD answer has a body: %q", w.Body)
	}
	// Errors to HEAD carry no body either.
	w = e.do("HEAD", "/v1/s/customer-a/x.jpg", nil)
	if w.Code != http.StatusUnauthorized || w.Body.Len() != 0 {
		t.Errorf("HEAD without token: %d %q, want 401 and no body", w.Code, w.Body)
	}
}

func TestNoToken(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	for _, target := range []string{"/v1/s/customer-a/cats/1.jpg", "/v1/s/customer-a/cats/1.jpg?token=", "/v1/u?url=s3://acme-images/images/a.jpg"} {
		w := e.get(target)
		wantError(t, w, http.StatusUnauthorized, "token_missing")
		if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("%s: WWW-Authenticate = %q, want Bearer", target, got)
		}
	}
	// A header that is not a bearer token is no token.
	w := e.do("GET", "/v1/s/customer-a/x", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}})
	wantError(t, w, http.StatusUnauthorized, "token_missing")
}

func TestTokenSources(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := signHS(t, claims(grant("customer-a", "")))
	tests := []struct {
		name   string
		target string
		hdr    http.Header
	}{
		{"query", "/v1/s/customer-a/k?token=" + tok, nil},
		{"query among others", "/v1/s/customer-a/k?a=1&token=" + tok + "&b=2", nil},
		{"bearer header", "/v1/s/customer-a/k", http.Header{"Authorization": {"Bearer " + tok}}},
		{"bearer lowercase", "/v1/s/customer-a/k", http.Header{"Authorization": {"bearer " + tok}}},
		{"cookie", "/v1/s/customer-a/k", http.Header{"Cookie": {"other=1; " + auth.CookieName + "=" + tok}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRedirect(t, e.do("GET", tt.target, tt.hdr), t0)
		})
	}
}

func TestBadTokens(t *testing.T) {
	k := testKeys()
	e := newEnv(t, baseConfig(t))
	ok := claims(grant("customer-a", ""))
	with := func(mod func(c jwt.MapClaims)) jwt.MapClaims {
		c := claims(grant("customer-a", ""))
		mod(c)
		return c
	}
	good := signHS(t, ok)
	parts := strings.Split(good, ".")
	other := strings.Repeat("x", 40)
	tests := []struct {
		name  string
		token string
		code  string // "" = any 401 code
	}{
		{"bad signature", signWith(t, jwt.SigningMethodHS256, []byte(other), "k1", ok), "token_bad_signature"},
		{"bad signature without kid", signWith(t, jwt.SigningMethodHS256, []byte(other), "", ok), "token_bad_signature"},
		{"tampered payload", parts[0] + "." + strings.Split(signHS(t, claims(grant("customer-b", ""))), ".")[1] + "." + parts[2], "token_bad_signature"},
		{"truncated signature", good[:len(good)-4], ""},
		{"expired", signHS(t, with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Hour).Unix() })), "token_expired"},
		{"expired past leeway", signHS(t, with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-31 * time.Second).Unix() })), "token_expired"},
		{"no exp", signHS(t, with(func(c jwt.MapClaims) { delete(c, "exp") })), ""},
		{"not yet valid", signHS(t, with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Hour).Unix() })), "token_not_yet_valid"},
		{"issued in the future", signHS(t, with(func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Hour).Unix() })), "token_not_yet_valid"},
		{"wrong issuer", signHS(t, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" })), "token_bad_issuer"},
		{"no issuer", signHS(t, with(func(c jwt.MapClaims) { delete(c, "iss") })), "token_bad_issuer"},
		{"wrong audience", signHS(t, with(func(c jwt.MapClaims) { c["aud"] = "other" })), "token_bad_audience"},
		{"no audience", signHS(t, with(func(c jwt.MapClaims) { delete(c, "aud") })), "token_bad_audience"},
		{"unknown kid", signWith(t, jwt.SigningMethodHS256, []byte(testSecret), "k9", ok), "token_unknown_key"},
		{"alg none", noneToken(t, ok), ""},
		{"alg none with kid", noneTokenKID(t, ok, "k1"), ""},
		// Algorithm confusion: an HS256 token whose secret is the RS256
		// key's public PEM, named by that key's kid or by none.
		{"HS256 with RSA public PEM, kid of RSA key", signWith(t, jwt.SigningMethodHS256, []byte(k.rsaPEM), "k3", ok), ""},
		{"HS256 with RSA public PEM, no kid", signWith(t, jwt.SigningMethodHS256, []byte(k.rsaPEM), "", ok), ""},
		{"HS256 with EC public PEM, kid of EC key", signWith(t, jwt.SigningMethodHS256, []byte(k.ecPEM), "k2", ok), ""},
		{"RS256 token under the HS256 kid", signWith(t, jwt.SigningMethodRS256, k.rsa, "k1", ok), ""},
		{"PS256 by the RSA key", signWith(t, jwt.SigningMethodPS256, k.rsa, "k3", ok), ""},
		{"EdDSA not configured", signWith(t, jwt.SigningMethodEdDSA, newEd25519(t), "", ok), ""},
		{"malformed", "not-a-jwt", "token_malformed"},
		{"three garbage segments", "a.b.c", "token_malformed"},
		{"empty segments", "..", "token_malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, via := range []string{"query", "header"} {
				var w *httptest.ResponseRecorder
				if via == "query" {
					w = e.get("/v1/s/customer-a/k?token=" + url.QueryEscape(tt.token))
				} else {
					w = e.do("GET", "/v1/s/customer-a/k", http.Header{"Authorization": {"Bearer " + tt.token}})
				}
				wantError(t, w, http.StatusUnauthorized, tt.code, tt.token)
				if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: no WWW-Authenticate: Bearer", via)
				}
			}
		})
	}

	// The same claims under every configured key and algorithm pass.
	for _, tok := range []string{
		good,
		signWith(t, jwt.SigningMethodES256, k.ec, "k2", ok),
		signWith(t, jwt.SigningMethodES256, k.ec, "", ok),
		signWith(t, jwt.SigningMethodRS256, k.rsa, "k3", ok),
		signHS(t, with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-10 * time.Second).Unix() })), // within leeway
		signHS(t, with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(10 * time.Second).Unix() })),  // within leeway
		signHS(t, with(func(c jwt.MapClaims) { c["aud"] = []string{"x", testAudience} })),
	} {
		wantRedirect(t, e.get("/v1/s/customer-a/k?token="+tok), t0)
	}
}

// TestOnlyAsymmetricKey: with only an ES256 key configured, no HS256
// token passes, whatever secret signed it.
func TestOnlyAsymmetricKey(t *testing.T) {
	k := testKeys()
	cfg := baseConfig(t)
	cfg.Auth.Keys = []auth.KeyConfig{{ID: "k2", Alg: "ES256", PublicKey: k.ecPEM}}
	e := newEnv(t, cfg)
	ok := claims(grant("customer-a", ""))
	for name, tok := range map[string]string{
		"HS256 with a secret":       signWith(t, jwt.SigningMethodHS256, []byte(testSecret), "", ok),
		"HS256 with the EC PEM":     signWith(t, jwt.SigningMethodHS256, []byte(k.ecPEM), "", ok),
		"HS256 with the EC PEM kid": signWith(t, jwt.SigningMethodHS256, []byte(k.ecPEM), "k2", ok),
		"alg none":                  noneToken(t, ok),
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, e.get("/v1/s/customer-a/k?token="+tok), http.StatusUnauthorized, "", tok)
		})
	}
	wantRedirect(t, e.get("/v1/s/customer-a/k?token="+signWith(t, jwt.SigningMethodES256, k.ec, "", ok)), t0)
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func noneToken(t testing.TB, c jwt.MapClaims) string { return noneTokenKID(t, c, "") }

func noneTokenKID(t testing.TB, c jwt.MapClaims, kid string) string {
	t.Helper()
	return signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, c)
}

// TestGrants checks grant prefixes against keys, both relative to the
// source's prefix (images/ for customer-a).
func TestGrants(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tests := []struct {
		name   string
		grants []auth.Grant
		target string
		want   int
	}{
		{"whole source", []auth.Grant{grant("customer-a", "")}, "/v1/s/customer-a/cats/1.jpg", 302},
		{"relative prefix covers", []auth.Grant{grant("customer-a", "cats/")}, "/v1/s/customer-a/cats/1.jpg", 302},
		{"prefix is a string prefix", []auth.Grant{grant("customer-a", "cat")}, "/v1/s/customer-a/cats/1.jpg", 302},
		{"prefix equal to key", []auth.Grant{grant("customer-a", "cats/1.jpg")}, "/v1/s/customer-a/cats/1.jpg", 302},
		{"second grant covers", []auth.Grant{grant("customer-b", ""), grant("customer-a", "cats/")}, "/v1/s/customer-a/cats/1.jpg", 302},
		{"source prefix in grant does not cover", []auth.Grant{grant("customer-a", "images/cats/")}, "/v1/s/customer-a/cats/1.jpg", 403},
		{"other prefix", []auth.Grant{grant("customer-a", "dogs/")}, "/v1/s/customer-a/cats/1.jpg", 403},
		{"prefix longer than key", []auth.Grant{grant("customer-a", "cats/1.jpg/x")}, "/v1/s/customer-a/cats/1.jpg", 403},
		{"prefix is case-sensitive", []auth.Grant{grant("customer-a", "Cats/")}, "/v1/s/customer-a/cats/1.jpg", 403},
		{"other source", []auth.Grant{grant("customer-b", "")}, "/v1/s/customer-a/cats/1.jpg", 403},
		{"no grants", nil, "/v1/s/customer-a/cats/1.jpg", 403},
		{"grant compares decoded keys", []auth.Grant{grant("customer-a", "a b/")}, "/v1/s/customer-a/a%20b/1.jpg", 302},
		{"escaped grant prefix is not decoded", []auth.Grant{grant("customer-a", "a%20b/")}, "/v1/s/customer-a/a%20b/1.jpg", 403},
		{"storage URL: relative prefix covers", []auth.Grant{grant("customer-a", "cats/")}, "/v1/u?url=s3://acme-images/images/cats/1.jpg", 302},
		{"storage URL: other prefix", []auth.Grant{grant("customer-a", "dogs/")}, "/v1/u?url=s3://acme-images/images/cats/1.jpg", 403},
		{"storage URL: other source", []auth.Grant{grant("customer-b", "")}, "/v1/u?url=s3://acme-images/images/cats/1.jpg", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := signHS(t, claims(tt.grants...))
			sep := "?"
			if strings.Contains(tt.target, "?") {
				sep = "&"
			}
			w := e.get(tt.target + sep + "token=" + tok)
			if tt.want == 403 {
				wantError(t, w, http.StatusForbidden, "forbidden", tok)
				return
			}
			loc, _ := wantRedirect(t, w, t0)
			if !strings.Contains(loc, "/images/") {
				t.Errorf("Location %s is not under the source prefix", loc)
			}
		})
	}
}

func TestBadReference(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)
	targets := []string{
		"/v1/s/customer-a/../secret",
		"/v1/s/customer-a/a/../../secret",
		"/v1/s/customer-a/./x",
		"/v1/s/customer-a/a/./x",
		"/v1/s/customer-a/a/..",
		"/v1/s/customer-a/..",
		"/v1/s/customer-a/%2e%2e/secret",
		"/v1/s/customer-a/%2E%2E/secret",
		"/v1/s/customer-a/.%2e/secret",
		"/v1/s/customer-a/%2e/secret",
		"/v1/s/customer-a/a%2F..%2Fsecret",
		"/v1/s/customer-a/a%2f%2e%2e%2fsecret",
		"/v1/s/customer-a/a%5C..%5Csecret",
		"/v1/s/customer-a/a%00b",
		"/v1/s/customer-a/%00",
		"/v1/s/customer-a/%ff.jpg",
		"/v1/s/customer-a/%c0%ae%c0%ae/secret", // overlong UTF-8 for ".."
		"/v1/s/customer-a/",
		"/v1/s/customer-a",
		"/v1/s//key",
		"/v1/s/",
		"/v1/s/local/../outside.txt",
		"/v1/s/local/%2e%2e/outside.txt",
		"/v1/f/local-r/../outside.txt?exp=1&sig=x",
	}
	for _, target := range targets {
		for _, withToken := range []bool{false, true} {
			name := target
			if withToken {
				name += " (with token)"
			}
			t.Run(name, func(t *testing.T) {
				tt := target
				if withToken {
					if strings.Contains(tt, "?") {
						tt += "&token=" + tok
					} else {
						tt += "?token=" + tok
					}
				}
				// Malformed references are refused before the token is
				// looked at.
				wantError(t, e.get(tt), http.StatusBadRequest, "bad_reference", tok)
			})
		}
	}
}

// TestBadEscapeOnTheWire: a path with a bad escape cannot even be parsed
// into a request; the Go server refuses it with 400 before the handler.
func TestBadEscapeOnTheWire(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	for _, target := range []string{"/v1/s/customer-a/a%zz", "/v1/s/customer-a/a%", "/v1/s/customer-a/%2"} {
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status = %d, want 400", target, resp.StatusCode)
		}
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)
	tests := []struct {
		target, code string
	}{
		{"/v1/s/nope/k", "unknown_source"},
		{"/v1/s/Customer-A/k", "unknown_source"},
		{"/v1/s/customer-a%2Fx/k", "unknown_source"},
		{"/v1/u?url=" + url.QueryEscape("s3://other-bucket/images/k.jpg"), "unknown_bucket"},
		{"/v1/u?url=" + url.QueryEscape("https://other-bucket.s3.eu-west-1.amazonaws.com/images/k.jpg"), "unknown_bucket"},
		{"/v1/u?url=" + url.QueryEscape("https://s3.amazonaws.com/other-bucket/images/k.jpg"), "unknown_bucket"},
		{"/v1/u?url=" + url.QueryEscape("s3://acme-images/outside/k.jpg"), "unknown_bucket"}, // outside the source prefix
		{"/v1/u?url=" + url.QueryEscape("s3://acme-images/images/"), "unknown_bucket"},       // the prefix itself is no object
		{"/v1/u?url=" + url.QueryEscape("gs://acme-images/images/k.jpg"), "unknown_bucket"},
		{"/v1/u?url=" + url.QueryEscape("https://minio.example.com/acme-images/images/k.jpg"), "unknown_bucket"},
		{"/v1/s/local/missing.txt", "object_not_found"},
		{"/v1/s/local/cats", "object_not_found"},
		{"/v1/s/local/cats/", "object_not_found"},
		{"/v2/s/customer-a/k", "not_found"},
		{"/v1/x", "not_found"},
		{"/", "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			sep := "?"
			if strings.Contains(tt.target, "?") {
				sep = "&"
			}
			w := e.get(tt.target + sep + "token=" + tok)
			status := http.StatusNotFound
			if tt.code == "bad_storage_url" {
				status = http.StatusBadRequest
			}
			wantError(t, w, status, tt.code, tok)
		})
	}
	// An unknown source is 404 whatever the token grants, as on /v1/u.
	w := e.get("/v1/s/nope/k?token=" + signHS(t, claims(grant("customer-a", ""))))
	wantError(t, w, http.StatusNotFound, "unknown_source")
}

func TestBadStorageURL(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)
	for _, raw := range []string{
		"",
		"ftp://acme-images/k",
		"https://acme-images.s3.amazonaws.com/a%zz",
		"https://acme-images.s3.amazonaws.com/a/../b",
		"https://acme-images.s3.amazonaws.com/a/%2e%2e/b",
		"https://acme-images.s3.amazonaws.com/a%00b",
		"https://acme-images.s3.amazonaws.com/%ff",
		"https://user:pw@acme-images.s3.amazonaws.com/k",
		"s3://acme-images/a/../b",
		"s3://acme-images/a\x00b",
		"s3:///k",
		"https://s3.amazonaws.com/",
		"https://example.amazonaws.com/k",
		"/relative/k",
	} {
		t.Run(raw, func(t *testing.T) {
			target := "/v1/u?url=" + url.QueryEscape(raw) + "&token=" + tok
			if raw == "" {
				target = "/v1/u?token=" + tok
			}
			wantError(t, e.get(target), http.StatusBadRequest, "bad_storage_url", tok)
		})
	}
}

// TestStorageURLForms: every AWS form of PRODUCT.md names the object of a
// source with that bucket and no endpoint.
func TestStorageURLForms(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := signHS(t, claims(grant("customer-a", "cats/"), grant("customer-b", "")))
	const wantA = "https://acme-images.s3.eu-west-1.amazonaws.com/images/cats/1%20%2B%28x%29.jpg?"
	const wantB = "https://s3.eu-west-1.amazonaws.com/partner.frames/f/1.png?"
	tests := []struct{ name, raw, want string }{
		{"virtual-hosted with region", "https://acme-images.s3.eu-west-1.amazonaws.com/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"virtual-hosted other region", "https://acme-images.s3.us-east-2.amazonaws.com/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"virtual-hosted without region", "https://acme-images.s3.amazonaws.com/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"virtual-hosted dualstack", "https://acme-images.s3.dualstack.eu-west-1.amazonaws.com/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"virtual-hosted uppercase host", "https://ACME-IMAGES.S3.Amazonaws.com/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"virtual-hosted http", "http://acme-images.s3.amazonaws.com/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"virtual-hosted with query", "https://acme-images.s3.amazonaws.com/images/cats/1%20%2B%28x%29.jpg?X-Amz-Signature=old", wantA},
		{"legacy s3-REGION", "https://acme-images.s3-eu-west-1.amazonaws.com/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"path-style with region", "https://s3.eu-west-1.amazonaws.com/acme-images/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"path-style without region", "https://s3.amazonaws.com/acme-images/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"path-style legacy s3-REGION", "https://s3-eu-west-1.amazonaws.com/acme-images/images/cats/1%20%2B%28x%29.jpg", wantA},
		{"s3 scheme, key as is", "s3://acme-images/images/cats/1 +(x).jpg", wantA},
		{"S3 scheme uppercase", "S3://acme-images/images/cats/1 +(x).jpg", wantA},
		{"dotted bucket virtual-hosted", "https://partner.frames.s3.eu-west-1.amazonaws.com/f/1.png", wantB},
		{"dotted bucket path-style", "https://s3.eu-west-1.amazonaws.com/partner.frames/f/1.png", wantB},
		{"dotted bucket s3 scheme", "s3://partner.frames/f/1.png", wantB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, _ := wantRedirect(t, e.get("/v1/u?url="+url.QueryEscape(tt.raw)+"&token="+tok), t0)
			if !strings.HasPrefix(loc, tt.want) {
				t.Errorf("Location = %s\nwant prefix %s", loc, tt.want)
			}
		})
	}
	// The same object by /v1/s and by /v1/u is the same cached URL.
	viaS, _ := wantRedirect(t, e.get("/v1/s/customer-a/cats/1%20%2B%28x%29.jpg?token="+tok), t0)
	viaU, _ := wantRedirect(t, e.get("/v1/u?url="+url.QueryEscape(tests[0].raw)+"&token="+tok), t0)
	if viaS != viaU {
		t.Errorf("/v1/s and /v1/u disagree:\n%s\n%s", viaS, viaU)
	}
}

// TestStorageURLLongestPrefix: among sources of one bucket, the one with
// the longest matching prefix takes the URL.
func TestStorageURLLongestPrefix(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Sources = append(cfg.Sources, s3Source("a-thumbs", "acme-images", "images/thumbs/"))
	e := newEnv(t, cfg)
	tokAll := signHS(t, claims(grant("customer-a", ""), grant("a-thumbs", "")))
	tokA := signHS(t, claims(grant("customer-a", "")))
	raw := url.QueryEscape("s3://acme-images/images/thumbs/1.jpg")
	wantRedirect(t, e.get("/v1/u?url="+raw+"&token="+tokAll), t0)
	// The thumbs source holds the object, so a grant on customer-a alone
	// does not reach it through a storage URL.
	wantError(t, e.get("/v1/u?url="+raw+"&token="+tokA), http.StatusForbidden, "forbidden")
}

func TestFileSource(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)

	t.Run("stream", func(t *testing.T) {
		w := e.get("/v1/s/local/a.txt?token=" + tok)
		if w.Code != 200 || w.Body.String() != fixtureFiles["files/a.txt"] {
			t.Fatalf("got %d %q", w.Code, w.Body)
		}
		etag := w.Header().Get("ETag")
		if etag == "" || w.Header().Get("Accept-Ranges") != "bytes" || w.Header().Get("Content-Length") != "12" {
			t.Errorf("headers %v", w.Header())
		}
		w = e.do("GET", "/v1/s/local/a.txt?token="+tok, http.Header{"Range": {"bytes=0-4"}})
		if w.Code != 206 || w.Body.String() != "hello" || w.Header().Get("Content-Range") != "bytes 0-4/12" {
			t.Errorf("range: %d %q %v", w.Code, w.Body, w.Header())
		}
		w = e.do("GET", "/v1/s/local/a.txt?token="+tok, http.Header{"If-None-Match": {etag}})
		if w.Code != 304 || w.Body.Len() != 0 {
			t.Errorf("If-None-Match: %d %q", w.Code, w.Body)
		}
		w = e.do("GET", "/v1/s/local/a.txt?token="+tok, http.Header{"Range": {"bytes=100-"}})
		if w.Code != 416 {
			t.Errorf("unsatisfiable range: %d", w.Code)
		}
		w = e.get("/v1/s/local/space%20name%20%281%29.png?token=" + tok)
		if w.Code != 200 || w.Body.String() != "parenthesised" {
			t.Errorf("awkward name: %d %q", w.Code, w.Body)
		}
	})

	t.Run("redirect", func(t *testing.T) {
		for _, key := range []string{"a.txt", "space name (1).png", "cats/1.jpg"} {
			w := e.get("/v1/s/local-r/" + signer.EscapePath(key) + "?token=" + tok)
			loc, _ := wantRedirect(t, w, t0)
			if !strings.HasPrefix(loc, "/v1/f/local-r/"+signer.EscapePath(key)+"?exp=") {
				t.Fatalf("Location = %s", loc)
			}
			// Following it needs no token.
			w = e.get(loc)
			if w.Code != 200 || w.Body.String() != fixtureFiles["files/"+key] {
				t.Fatalf("GET %s: %d %q", loc, w.Code, w.Body)
			}
			sig := mustQuery(t, loc).Get("sig")
			for name, bad := range map[string]string{
				"tampered sig": strings.Replace(loc, "sig="+sig, "sig="+flip(sig), 1),
				"no sig":       strings.Replace(loc, "&sig="+sig, "", 1),
				"later exp":    strings.Replace(loc, "?exp=", "?exp=9", 1),
				"other key":    strings.Replace(loc, "/v1/f/local-r/"+signer.EscapePath(key), "/v1/f/local-r/outsid", 1),
				"other source": strings.Replace(loc, "/v1/f/local-r/", "/v1/f/local/", 1),
			} {
				w := e.get(bad)
				if w.Code != 403 && w.Code != 404 {
					t.Errorf("%s: %s: status %d, want 403", key, name, w.Code)
				}
				wantError(t, w, w.Code, "", sig)
			}
		}
		loc, _ := wantRedirect(t, e.get("/v1/s/local-r/a.txt?token="+tok), t0)
		e.clk.Set(urlExpiry(t, loc))
		wantError(t, e.get(loc), http.StatusForbidden, "url_expired")
		e.clk.Set(t0)
	})

	t.Run("missing in redirect mode", func(t *testing.T) {
		// Redirect mode signs without looking; the signed URL is then 404.
		loc, _ := wantRedirect(t, e.get("/v1/s/local-r/missing.txt?token="+tok), t0)
		wantError(t, e.get(loc), http.StatusNotFound, "object_not_found")
	})
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// TestCredentialsUnavailable: an assume_role source whose STS endpoint is
// a closed port cannot get credentials: its objects are 503 and /readyz
// says why.
func TestCredentialsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cfg := baseConfig(t)
	src := s3Source("customer-r", "role-bucket", "")
	src.Credentials = signer.Credentials{
		Type: "assume_role", RoleARN: "arn:aws:iam::123456789012:role/edge-read", ExternalID: "ext",
		STSEndpoint: "http://" + closed, AccessKeyID: testAKID, SecretAccessKey: testSecKey,
	}
	cfg.Sources = append(cfg.Sources, src)
	e := newEnv(t, cfg)
	// The SDK retries a refused connection for a few seconds; the
	// readiness check runs meanwhile.
	ready := make(chan error, 1)
	go func() { ready <- e.srv.CheckReady(t.Context()) }()
	tok := signHS(t, claims(grant("customer-r", ""), grant("customer-a", "")))
	w := e.get("/v1/s/customer-r/k.jpg?token=" + tok)
	wantError(t, w, http.StatusServiceUnavailable, "credentials_unavailable", tok, testSecKey)
	// Other sources are unaffected.
	wantRedirect(t, e.get("/v1/s/customer-a/k.jpg?token="+tok), t0)

	if err := <-ready; err == nil {
		t.Fatal("CheckReady passed with unreachable STS")
	}
	// One source's credentials never make the edge unready: the state
	// shows in SourceStates and edge_source_up instead.
	if w = e.get("/readyz"); w.Code != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200 (one source failing)", w.Code, w.Body)
	}
	wantSourceStates(t, e, map[string]bool{"customer-a": true, "customer-r": false}, testSecKey)
}

// wantSourceStates checks SourceStates and edge_source_up for the named
// sources, and that no problem quotes a secret.
func wantSourceStates(t *testing.T, e *env, want map[string]bool, secrets ...string) {
	t.Helper()
	metrics := e.get("/metrics").Body.String()
	seen := 0
	for _, st := range e.srv.SourceStates() {
		up, ok := want[st.Name]
		if !ok {
			continue
		}
		seen++
		if st.Up != up || st.CheckedAt.IsZero() || (st.Problem == "") != up {
			t.Errorf("state of %s = %+v, want up %v, checked, a problem when down", st.Name, st, up)
		}
		for _, s := range secrets {
			assertNoSecret(t, "source problem", st.Problem, s)
		}
		line := `edge_source_up{source="` + st.Name + `"} 0`
		if up {
			line = `edge_source_up{source="` + st.Name + `"} 1`
		}
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	if seen != len(want) {
		t.Errorf("SourceStates names %d of the %d sources", seen, len(want))
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)
	allowed := []string{
		"https://app.segments.ai",
		"https://a.b-c.segments.ai",
		"http://localhost:3000",
		"http://localhost:1",
		"http://localhost",
	}
	refused := []string{
		"https://segments.ai",
		"http://app.segments.ai",
		"https://app.segments.ai:8443",
		"https://segments.ai.evil.com",
		"https://app.segments.ai.evil.com",
		"https://evilsegments.ai",
		"https://evil.com/.segments.ai",
		"https://evil.com?.segments.ai",
		"https://evil.com#.segments.ai",
		"https://evil.com@app.segments.ai",
		"https://.segments.ai",
		"https://a..segments.ai",
		"https://a_b.segments.ai",
		"http://localhost:1.evil.com",
		"http://localhost:3000.evil.com",
		"http://localhost.evil.com",
		"http://localhost:abc",
		"http://localhost:",
		"https://localhost:3000",
		"http://app.localhost:3000",
		"null",
		"*",
	}
	target := "/v1/s/customer-a/cats/1.jpg?token=" + tok
	for _, o := range allowed {
		t.Run("allowed "+o, func(t *testing.T) {
			w := e.do("GET", target, http.Header{"Origin": {o}})
			wantRedirect(t, w, t0)
			h := w.Header()
			if got := h.Get("Access-Control-Allow-Origin"); got != o {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, o)
			}
			if h.Get("Access-Control-Allow-Credentials") != "true" {
				t.Errorf("no Access-Control-Allow-Credentials: true")
			}
			if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary = %q, want Origin", h.Values("Vary"))
			}
			if exp, ok := h["Access-Control-Expose-Headers"]; ok {
				t.Errorf("Access-Control-Expose-Headers = %q on a redirect (never exposed to a page)", exp)
			}
			// Errors carry CORS too, so the page can read them.
			w = e.do("GET", "/v1/s/customer-a/cats/1.jpg", http.Header{"Origin": {o}})
			if w.Code != 401 || w.Header().Get("Access-Control-Allow-Origin") != o {
				t.Errorf("401 without CORS: %d %v", w.Code, w.Header())
			}

			p := e.do("OPTIONS", "/v1/s/customer-a/cats/1.jpg", http.Header{
				"Origin":                         {o},
				"Access-Control-Request-Method":  {"GET"},
				"Access-Control-Request-Headers": {"authorization,range"},
			})
			if p.Code != http.StatusNoContent && p.Code != http.StatusOK {
				t.Errorf("preflight status %d", p.Code)
			}
			ph := p.Header()
			if ph.Get("Access-Control-Allow-Origin") != o || ph.Get("Access-Control-Allow-Methods") != "GET" ||
				!strings.Contains(strings.ToLower(ph.Get("Access-Control-Allow-Headers")), "authorization") ||
				ph.Get("Access-Control-Max-Age") != "600" || ph.Get("Access-Control-Allow-Credentials") != "true" {
				t.Errorf("preflight headers %v", ph)
			}
			// POST /v1/session is preflighted too.
			p = e.do("OPTIONS", "/v1/session", http.Header{"Origin": {o}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization"}})
			if p.Header().Get("Access-Control-Allow-Origin") != o {
				t.Errorf("session preflight headers %v", p.Header())
			}
		})
	}
	for _, o := range refused {
		t.Run("refused "+o, func(t *testing.T) {
			w := e.do("GET", target, http.Header{"Origin": {o}})
			wantRedirect(t, w, t0) // CORS is the browser's business; the answer stands
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q for an unlisted origin", got)
			}
			if got := w.Header().Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials = %q for an unlisted origin", got)
			}
			p := e.do("OPTIONS", "/v1/s/customer-a/cats/1.jpg", http.Header{"Origin": {o}, "Access-Control-Request-Method": {"GET"}})
			if got := p.Header().Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("preflight: Access-Control-Allow-Origin = %q for an unlisted origin", got)
			}
		})
	}
	// A disallowed method or header is not preflighted.
	p := e.do("OPTIONS", "/v1/s/customer-a/k", http.Header{"Origin": {allowed[0]}, "Access-Control-Request-Method": {"DELETE"}})
	if p.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("DELETE preflight allowed: %v", p.Header())
	}
}

func TestOps(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	w := e.get("/healthz")
	if w.Code != 200 {
		t.Errorf("/healthz = %d", w.Code)
	}
	w = e.get("/readyz")
	wantError(t, w, http.StatusServiceUnavailable, "not_ready")
	if err := e.srv.CheckReady(t.Context()); err != nil {
		t.Fatalf("CheckReady: %v", err)
	}
	if w = e.get("/readyz"); w.Code != 200 {
		t.Errorf("/readyz after CheckReady = %d %s", w.Code, w.Body)
	}

	tok := tokenAll(t)
	e.get("/v1/s/customer-a/k?token=" + tok) // miss
	e.get("/v1/s/customer-a/k?token=" + tok) // hit
	e.get("/v1/s/customer-a/k")              // 401
	e.get("/v1/s/local/a.txt?token=" + tok)  // 200
	w = e.get("/metrics")
	if w.Code != 200 {
		t.Fatalf("/metrics = %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`edge_requests_total{mode="redirect",route="s",status="302"} 2`,
		`edge_requests_total{mode="none",route="s",status="401"} 1`,
		`edge_requests_total{mode="stream",route="s",status="200"} 1`,
		`edge_request_duration_seconds_bucket{mode="redirect",route="s",le="0.0001"}`,
		`edge_presign_cache_total{result="hit"} 1`,
		`edge_presign_cache_total{result="miss"} 1`,
		`edge_token_cache_total{result="hit"}`,
		`edge_token_cache_total{result="miss"} 1`,
		`edge_upstream_bytes_total`,
		`edge_streams_active 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	assertNoSecret(t, "/metrics", body, tok)
	assertNoSecret(t, "/metrics", body, testSecKey)
	if strings.Contains(body, "X-Amz-Signature") || strings.Contains(body, "images/k") {
		t.Errorf("/metrics leaks URLs or keys")
	}
	w = e.do("POST", "/v1/s/customer-a/k?token="+tok, nil)
	wantError(t, w, http.StatusMethodNotAllowed, "method_not_allowed", tok)
	if w.Header().Get("Allow") == "" {
		t.Errorf("405 without Allow")
	}
}

func TestSession(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	c := claims(grant("customer-a", ""))
	exp := t0.Add(90 * time.Minute)
	c["exp"] = exp.Unix()
	tok := signHS(t, c)
	w := e.do("POST", "/v1/session", http.Header{"Authorization": {"Bearer " + tok}, "Origin": {"https://app.segments.ai"}})
	if w.Code != http.StatusNoContent && w.Code != http.StatusOK {
		t.Fatalf("POST /v1/session = %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Access-Control-Allow-Origin") != "https://app.segments.ai" {
		t.Errorf("session answer lacks CORS: %v", w.Header())
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie: %v", w.Header().Values("Set-Cookie"))
	}
	ck := cookies[0]
	raw := w.Header().Get("Set-Cookie")
	if ck.Name != auth.CookieName || ck.Value != tok {
		t.Errorf("cookie %s=%.10s…, want %s=<token>", ck.Name, ck.Value, auth.CookieName)
	}
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteNoneMode {
		t.Errorf("cookie flags: %s, want HttpOnly; Secure; SameSite=None", raw)
	}
	if !ck.Expires.Equal(exp) {
		t.Errorf("cookie Expires = %s, want the token's exp %s", ck.Expires, exp)
	}
	if ck.MaxAge != int(exp.Sub(t0)/time.Second) {
		t.Errorf("cookie Max-Age = %d, want %d", ck.MaxAge, int(exp.Sub(t0)/time.Second))
	}
	if ck.Path != "/" && !strings.HasPrefix("/v1/s/", ck.Path) {
		t.Errorf("cookie Path = %q does not cover /v1/s/", ck.Path)
	}
	// The cookie then authenticates object requests.
	wantRedirect(t, e.do("GET", "/v1/s/customer-a/k", http.Header{"Cookie": {ck.Name + "=" + ck.Value}}), t0)

	for name, hdr := range map[string]http.Header{
		"no token":      nil,
		"query only":    nil,
		"bad token":     {"Authorization": {"Bearer " + tok[:len(tok)-3] + "abc"}},
		"expired token": {"Authorization": {"Bearer " + signHS(t, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "exp": t0.Add(-time.Hour).Unix()})}},
	} {
		target := "/v1/session"
		if name == "query only" {
			target += "?token=" + tok
		}
		w := e.do("POST", target, hdr)
		wantError(t, w, http.StatusUnauthorized, "", tok)
		if len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: a cookie was set", name)
		}
	}
	w = e.get("/v1/session")
	wantError(t, w, http.StatusMethodNotAllowed, "method_not_allowed")
}

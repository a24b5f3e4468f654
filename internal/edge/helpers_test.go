package edge

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// t0 is the tests' fixed "now": the start of a signing window for every
// window that divides an hour, so a test knows when the window turns.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testIssuer   = "https://app.example.com"
	testAudience = "edge"
	testSecret   = "test-hs256-secret-0123456789abcdef0123"
	// Fake static credentials: signing needs no network.
	testAKID   = "AKIDEXAMPLE"
	testSecKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testKeys are asymmetric keys made once per test binary.
var testKeys = sync.OnceValue(func() (k struct {
	ec     *ecdsa.PrivateKey
	ecPEM  string
	rsa    *rsa.PrivateKey
	rsaPEM string
}) {
	var err error
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	k.ecPEM = pemPublic(&k.ec.PublicKey)
	k.rsaPEM = pemPublic(&k.rsa.PublicKey)
	return k
})

func pemPublic(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// fixture is the object tree of the tests' file sources.
var fixtureFiles = map[string]string{
	"files/a.txt":              "hello from a",
	"files/cats/1.jpg":         "not really a jpeg",
	"files/space name (1).png": "parenthesised",
	"outside.txt":              "must never be served",
}

func writeFixture(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range fixtureFiles {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func s3Source(name, bucket, prefix string) SourceConfig {
	return SourceConfig{
		Name: name,
		Config: signer.Config{
			Provider: signer.ProviderS3, Bucket: bucket, Region: "eu-west-1",
			Credentials: signer.Credentials{Type: "static", AccessKeyID: testAKID, SecretAccessKey: testSecKey},
		},
		Prefix: prefix,
		Mode:   ModeRedirect,
		URLTTL: time.Hour,
	}
}

func fileSource(name, root, prefix, mode string) SourceConfig {
	return SourceConfig{
		Name:   name,
		Config: signer.Config{Provider: signer.ProviderFile, Root: root},
		Prefix: prefix,
		Mode:   mode,
	}
}

// baseConfig is the config most HTTP tests run with: an HS256, an ES256
// and an RS256 key, issuer and audience checked, CORS for the patterns of
// PRODUCT.md, two s3 sources (no network needed to sign) and two file
// sources over a fixture directory.
func baseConfig(t testing.TB) *Config {
	t.Helper()
	k := testKeys()
	root := writeFixture(t)
	cfg := &Config{
		Auth: auth.Config{
			Issuer: testIssuer, Audience: testAudience,
			Keys: []auth.KeyConfig{
				{ID: "k1", Alg: "HS256", Secret: testSecret},
				{ID: "k2", Alg: "ES256", PublicKey: k.ecPEM},
				{ID: "k3", Alg: "RS256", PublicKey: k.rsaPEM},
			},
		},
		CORS: CORSConfig{AllowedOrigins: []string{"https://*.segments.ai", "http://localhost:*"}},
		Sources: []SourceConfig{
			s3Source("customer-a", "acme-images", "images/"),
			s3Source("customer-b", "partner.frames", ""),
			fileSource("local", root, "files/", ModeStream),
			fileSource("local-r", root, "files/", ModeRedirect),
		},
	}
	return cfg
}

// env is one edge server under test, driven through its real handler.
type env struct {
	t   testing.TB
	cfg *Config
	srv *Server
	h   http.Handler
	clk *clock
}

type envOption func(*Options)

func withLogger(l *zap.Logger) envOption { return func(o *Options) { o.Logger = l } }

func newEnv(t testing.TB, cfg *Config, opts ...envOption) *env {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	clk := newClock(t0)
	o := Options{Now: clk.Now}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(srv.Close)
	return &env{t: t, cfg: cfg, srv: srv, h: srv.Handler(), clk: clk}
}

// do sends one request through the handler. target is what a client would
// put on the request line (already escaped).
func (e *env) do(method, target string, hdr http.Header) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return w
}

func (e *env) get(target string) *httptest.ResponseRecorder { return e.do("GET", target, nil) }

// claims builds token claims valid at t0 for the test issuer and audience.
func claims(grants ...auth.Grant) jwt.MapClaims { return claimsAt(t0, grants...) }

// claimsAt builds token claims valid at now.
func claimsAt(now time.Time, grants ...auth.Grant) jwt.MapClaims {
	g := make([]any, len(grants))
	for i, gr := range grants {
		g[i] = map[string]any{"source": gr.Source, "prefix": gr.Prefix}
	}
	return jwt.MapClaims{
		"iss":    testIssuer,
		"aud":    testAudience,
		"sub":    "annotator-17",
		"iat":    now.Add(-time.Minute).Unix(),
		"exp":    now.Add(time.Hour).Unix(),
		"grants": g,
	}
}

func grant(source, prefix string) auth.Grant { return auth.Grant{Source: source, Prefix: prefix} }

// signHS signs c with the test HS256 secret (kid k1).
func signHS(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	return signWith(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", c)
}

func signWith(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// tokenAll grants every source of baseConfig.
func tokenAll(t testing.TB) string {
	return signHS(t, claims(grant("customer-a", ""), grant("customer-b", ""), grant("local", ""), grant("local-r", ""), grant("nope", "")))
}

type errBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// wantError checks status, JSON body and code, and that the body holds no
// token (nor any part of it).
func wantError(t testing.TB, w *httptest.ResponseRecorder, status int, code string, secrets ...string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var b errBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("body %q is not the JSON error shape: %v", w.Body, err)
	}
	if code != "" && b.Error != code {
		t.Errorf("error = %q, want %q (message %q)", b.Error, code, b.Message)
	}
	if b.Error == "" || b.Message == "" {
		t.Errorf("error body %q lacks code or message", w.Body)
	}
	if id := w.Header().Get("X-Request-Id"); b.RequestID == "" || b.RequestID != id {
		t.Errorf("error body's request_id = %q, want the answer's X-Request-Id %q", b.RequestID, id)
	}
	for _, s := range secrets {
		assertNoSecret(t, "error body", w.Body.String(), s)
	}
}

// assertNoSecret fails when text holds secret or any of its JWT segments.
func assertNoSecret(t testing.TB, what, text, secret string) {
	t.Helper()
	if secret == "" {
		return
	}
	parts := []string{secret}
	if strings.Count(secret, ".") == 2 {
		for _, p := range strings.Split(secret, ".") {
			if len(p) >= 8 {
				parts = append(parts, p)
			}
		}
	}
	for _, p := range parts {
		if strings.Contains(text, p) {
			t.Errorf("%s contains a secret (%.12s…): %s", what, p, text)
		}
	}
}

func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

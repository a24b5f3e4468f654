package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// t0 is the tests' "now": one hour before the example token's exp.
var t0 = time.Unix(1767225600-3600, 0).UTC()

// Test secrets: each at least MinSecretLen bytes.
const (
	secret1 = "0123456789abcdef0123456789abcdef-one"
	secret2 = "0123456789abcdef0123456789abcdef-two"
	secret3 = "0123456789abcdef0123456789abcdef-three"
)

const (
	testIssuer   = "https://app.example.com"
	testAudience = "edge"
)

// testKeys holds key pairs generated once per test binary: RSA key
// generation is slow, more so under -race.
type testKeys struct {
	rsa     *rsa.PrivateKey
	rsaPEM  string // PKIX "PUBLIC KEY"
	rsa1PEM string // PKCS#1 "RSA PUBLIC KEY"
	rsaCert string // a self-signed certificate for rsa
	rsa1024 string // PKIX, too short
	ec      *ecdsa.PrivateKey
	ecPEM   string
	ecOther *ecdsa.PrivateKey // P-256, not configured
	ec384   *ecdsa.PrivateKey
	ec384PE string
	ed      ed25519.PrivateKey
	edPEM   string
	edOther ed25519.PrivateKey // not configured
	privPEM string             // a private key block, not a public key
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func keys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		k := &keysVal
		var err error
		must := func(e error) {
			if e != nil {
				panic(e)
			}
		}
		k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		k.rsaPEM = pkixPEM(&k.rsa.PublicKey)
		k.rsa1PEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "app.example.com"},
			NotBefore:    t0.Add(-time.Hour),
			NotAfter:     t0.Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.rsa.PublicKey, k.rsa)
		must(err)
		k.rsaCert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		small, err := rsa.GenerateKey(rand.Reader, 1024)
		must(err)
		k.rsa1024 = pkixPEM(&small.PublicKey)
		k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		k.ecPEM = pkixPEM(&k.ec.PublicKey)
		k.ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		k.ec384PE = pkixPEM(&k.ec384.PublicKey)
		var pub ed25519.PublicKey
		pub, k.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		k.edPEM = pkixPEM(pub)
		_, k.edOther, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		p8, err := x509.MarshalPKCS8PrivateKey(k.ec)
		must(err)
		k.privPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))
	})
	return &keysVal
}

func pkixPEM(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// writeFile writes data under t's temp dir and returns the path.
func writeFile(t testing.TB, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// clock is the injected "now", settable by tests.
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

// claims returns the claims of a token that every test config accepts at
// t0; edit the map to build a bad one.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":    testIssuer,
		"aud":    testAudience,
		"sub":    "annotator-17",
		"iat":    t0.Add(-time.Minute).Unix(),
		"exp":    t0.Add(time.Hour).Unix(),
		"grants": []map[string]string{{"source": "customer-a", "prefix": "datasets/42/"}},
	}
}

// sign signs c with method and key, adding header fields (a nil value
// deletes the field).
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing %s: %v", method.Alg(), err)
	}
	return s
}

// with returns claims() with the given fields replaced (a nil value
// deletes the field).
func with(kv ...any) jwt.MapClaims {
	c := claims()
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
		} else {
			c[k] = kv[i+1]
		}
	}
	return c
}

// newVerifier builds a Verifier from cfg (after Defaults) or fails t.
func newVerifier(t testing.TB, cfg Config, now func() time.Time) *Verifier {
	t.Helper()
	cfg.Defaults()
	v, err := NewVerifier(cfg, now)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

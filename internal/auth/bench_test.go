package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// coldVerifier verifies every time: NewVerifier builds no cache for
// CacheEntries 0 (the config is used without Defaults).
func coldVerifier(b *testing.B) *Verifier {
	b.Helper()
	cfg := fullConfig(b)
	cfg.CacheEntries = 0
	v, err := NewVerifier(cfg, func() time.Time { return t0 })
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func benchVerify(b *testing.B, v *Verifier, tok string, wantHit bool) {
	b.Helper()
	if _, _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, hit, err := v.Verify(tok)
		if err != nil || hit != wantHit {
			b.Fatalf("got hit %v, err %v; want hit %v", hit, err, wantHit)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	v := newVerifier(b, fullConfig(b), func() time.Time { return t0 })
	benchVerify(b, v, sign(b, jwt.SigningMethodHS256, []byte(secret1), nil, claims()), true)
}

func BenchmarkVerifyHS256Cold(b *testing.B) {
	benchVerify(b, coldVerifier(b), sign(b, jwt.SigningMethodHS256, []byte(secret1), nil, claims()), false)
}

func BenchmarkVerifyRS256Cold(b *testing.B) {
	benchVerify(b, coldVerifier(b), sign(b, jwt.SigningMethodRS256, keys(b).rsa, nil, claims()), false)
}

func BenchmarkVerifyES256Cold(b *testing.B) {
	benchVerify(b, coldVerifier(b), sign(b, jwt.SigningMethodES256, keys(b).ec, nil, claims()), false)
}

func BenchmarkVerifyEdDSACold(b *testing.B) {
	benchVerify(b, coldVerifier(b), sign(b, jwt.SigningMethodEdDSA, keys(b).ed, nil, claims()), false)
}

func BenchmarkFromRequest(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/v1/s/customer-a/cats/1.jpg?token=aaaa.bbbb.cccc", nil)
	b.ReportAllocs()
	for b.Loop() {
		if FromRequest(r) == "" {
			b.Fatal("no token")
		}
	}
}

func TestVerifyCachedAllocs(t *testing.T) {
	v := newVerifier(t, fullConfig(t), func() time.Time { return t0 })
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, claims())
	if _, _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/s/customer-a/cats/1.jpg?token="+tok, nil)
	n := testing.AllocsPerRun(1000, func() {
		if _, hit, _ := v.Verify(FromRequest(r)); !hit {
			t.Fatal("got a miss, want a hit")
		}
	})
	if n != 0 {
		t.Errorf("FromRequest + cached Verify: got %v allocs, want 0", n)
	}
}

// benchClaims is the payload of the cold benchmarks' tokens.
var benchClaims = []byte(rawClaims(`"grants":[{"source":"customer-a","prefix":"datasets/42/"},{"source":"customer-b","prefix":""}]`, "grants"))

// BenchmarkClaimsUnmarshal is the strict claims decode on the verify miss
// path; BenchmarkClaimsUnmarshalReflect is encoding/json's reflective
// decode of the same fields, which it replaced.
func BenchmarkClaimsUnmarshal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var c Claims
		if err := json.Unmarshal(benchClaims, &c); err != nil || len(c.Grants) != 2 {
			b.Fatal(err)
		}
	}
}

func BenchmarkClaimsUnmarshalReflect(b *testing.B) {
	type plain struct {
		jwt.RegisteredClaims
		Grants []Grant `json:"grants"`
	}
	b.ReportAllocs()
	for b.Loop() {
		var c plain
		if err := json.Unmarshal(benchClaims, &c); err != nil || len(c.Grants) != 2 {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckHeader(b *testing.B) {
	tok := sign(b, jwt.SigningMethodHS256, []byte(secret1), map[string]any{"kid": "hs1"}, claims())
	b.ReportAllocs()
	for b.Loop() {
		if err := checkHeader(tok); err != nil {
			b.Fatal(err)
		}
	}
}

package auth

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestKidFallsBackToUnnamedKeys: a kid no key is named by falls back to
// the keys of its algorithm configured without an id, never to named keys
// or another algorithm's.
func TestKidFallsBackToUnnamedKeys(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	named, unnamed, other := "named-secret-0123456789abcdef0123", "unnamed-secret-0123456789abcdef01", "other-secret-0123456789abcdef0123"
	v, err := NewVerifier(Config{Keys: []KeyConfig{
		{ID: "new", Alg: "HS256", Secret: named},
		{Alg: "HS256", Secret: unnamed},
	}}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	sign := func(secret, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{
			Subject: "a", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}})
		tok.Header["kid"] = kid
		s, err := tok.SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct{ name, tok, code string }{
		{"kid names the named key", sign(named, "new"), ""},
		{"foreign kid, unnamed key", sign(unnamed, "from-another-lib"), ""},
		{"foreign kid, named key's secret", sign(named, "from-another-lib"), "token_bad_signature"},
		{"foreign kid, unknown secret", sign(other, "x"), "token_bad_signature"},
		{"named kid, unnamed key's secret", sign(unnamed, "new"), "token_bad_signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := v.Verify(tc.tok)
			wantCode(t, err, tc.code)
		})
	}
}

// wantCode fails t unless err is an *Error with code, or nil for "".
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	got := ""
	if ae, ok := err.(*Error); ok {
		got = ae.Code
	} else if err != nil {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	if got != code {
		t.Errorf("got code %q (%v), want %q", got, err, code)
	}
}

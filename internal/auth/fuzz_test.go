package auth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds token strings to a Verifier holding an HS256 secret and
// an ES256 key that the fuzzer cannot know. It must never panic, and only
// the seeded tokens signed with those keys may pass: a mutation that still
// verifies would be a forgery (or a second spelling of a signed token).
func FuzzVerify(f *testing.F) {
	k := keys(f)
	cfg := Config{
		Issuer:   testIssuer,
		Audience: testAudience,
		Leeway:   30 * time.Second,
		Keys: []KeyConfig{
			{ID: "hs1", Alg: "HS256", Secret: secret1},
			{Alg: "HS256", Secret: secret2},
			{ID: "es1", Alg: "ES256", PublicKey: k.ecPEM},
		},
	}
	signed := map[string]bool{}
	for _, tok := range []string{
		sign(f, jwt.SigningMethodHS256, []byte(secret1), map[string]any{"kid": "hs1"}, claims()),
		sign(f, jwt.SigningMethodHS256, []byte(secret1), nil, claims()),
		sign(f, jwt.SigningMethodHS256, []byte(secret2), nil, claims()),
		sign(f, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "es1"}, claims()),
		sign(f, jwt.SigningMethodES256, k.ec, nil, with("nbf", t0.Unix(), "grants", []Grant{{Source: "s"}})),
	} {
		signed[tok] = true
		f.Add(tok)
	}
	// Refused seeds, from the table tests.
	valid := sign(f, jwt.SigningMethodHS256, []byte(secret1), nil, claims())
	h, rest, _ := strings.Cut(valid, ".")
	p, sig, _ := strings.Cut(rest, ".")
	for _, tok := range []string{
		"", "garbage", "..", h + "." + p, valid + ".x", "!!!." + p + "." + sig,
		b64(`{"alg":"none"}`) + "." + p + ".",
		b64(`{"alg":"HS256","kid":"es1"}`) + "." + p + "." + sig,
		b64(`{"alg":"ES384"}`) + "." + p + "." + sig,
		h + "." + b64(`{"exp":1e400}`) + "." + sig,
		h + "." + b64(`{"exp":-1,"aud":[1,{}],"grants":{}}`) + "." + sig,
		sign(f, jwt.SigningMethodHS256, []byte(k.ecPEM), nil, claims()),
		sign(f, jwt.SigningMethodHS256, []byte(secret3), nil, claims()),
		sign(f, jwt.SigningMethodES256, k.ecOther, nil, claims()),
		sign(f, jwt.SigningMethodHS256, []byte(secret1), nil, with("exp", t0.Add(-time.Hour).Unix())),
	} {
		f.Add(tok)
	}
	// The hardening issue's attacks, signed with secret1: refused, except
	// the controls and the case variants that leave the real claims
	// standing (the claims as read are checked below).
	for _, tt := range strictCases() {
		tok := signRaw(f, tt.header, tt.claims)
		if tt.code == "" {
			signed[tok] = true
		}
		f.Add(tok)
	}
	now := func() time.Time { return t0 }
	f.Fuzz(func(t *testing.T, tok string) {
		// A fresh Verifier each time: a token is judged on its own, not
		// from the cache of an earlier input.
		v, err := NewVerifier(cfg, now)
		if err != nil {
			t.Fatal(err)
		}
		c, hit, err := v.Verify(tok)
		if err == nil {
			if !signed[tok] {
				t.Fatalf("Verify(%q) accepted a token it never signed: %+v", tok, c)
			}
			if c == nil || hit {
				t.Fatalf("got claims %v, hit %v; want claims from a fresh verification", c, hit)
			}
			// The claims as read break no rule, by an independent reader.
			h, rest, _ := strings.Cut(tok, ".")
			p, _, _ := strings.Cut(rest, ".")
			hb, err1 := base64.RawURLEncoding.DecodeString(h)
			pb, err2 := base64.RawURLEncoding.DecodeString(p)
			if err1 != nil || err2 != nil {
				t.Fatalf("accepted a token whose segments do not decode")
			}
			if err := oracleHeader(hb); err != nil {
				t.Fatalf("accepted a token whose header breaks a rule: %v", err)
			}
			if err := oracleClaims(pb, c); err != nil {
				t.Fatalf("accepted a token whose claims break a rule: %v", err)
			}
			return
		}
		if c != nil {
			t.Fatalf("got claims %+v with error %v", c, err)
		}
		if code(err) == "" || strings.HasPrefix(code(err), "not an") {
			t.Fatalf("got %v, want an *auth.Error", err)
		}
		if signed[tok] {
			t.Fatalf("Verify refused a seeded signed token: %v", err)
		}
	})
}

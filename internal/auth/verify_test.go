package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fullConfig has one key of each algorithm, each with an id, and checks
// issuer and audience.
func fullConfig(t testing.TB) Config {
	k := keys(t)
	return Config{
		Issuer:   testIssuer,
		Audience: testAudience,
		Leeway:   30 * time.Second,
		Keys: []KeyConfig{
			{ID: "hs1", Alg: "HS256", Secret: secret1},
			{ID: "rs1", Alg: "RS256", PublicKey: k.rsaPEM},
			{ID: "es1", Alg: "ES256", PublicKey: k.ecPEM},
			{ID: "ed1", Alg: "EdDSA", PublicKeyFile: writeFile(t, "ed.pem", k.edPEM)},
		},
	}
}

// alphabet is base64url's, in value order.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// b64 is the unpadded base64url of s, as JWT segments are encoded.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerify(t *testing.T) {
	k := keys(t)
	clk := newClock(t0)
	full := newVerifier(t, fullConfig(t), clk.Now)
	noChecks := fullConfig(t)
	noChecks.Issuer, noChecks.Audience = "", ""
	unchecked := newVerifier(t, noChecks, clk.Now)
	hsOnly := newVerifier(t, Config{Keys: []KeyConfig{{Alg: "HS256", Secret: secret1}}}, clk.Now)
	rsOnly := newVerifier(t, Config{Keys: []KeyConfig{{Alg: "RS256", PublicKey: k.rsaPEM}}}, clk.Now)
	rotation := newVerifier(t, Config{Keys: []KeyConfig{
		{Alg: "HS256", Secret: secret1},
		{Alg: "HS256", Secret: secret2},
	}}, clk.Now)
	// mixed has an HS256 key without kid beside the RSA key, so an HS256
	// token reaches signature checking with the HS256 secrets only.
	mixed := newVerifier(t, Config{Keys: []KeyConfig{
		{Alg: "HS256", Secret: secret1},
		{Alg: "RS256", PublicKey: k.rsaPEM},
	}}, clk.Now)

	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, c) }
	valid := hs(claims())
	h, p, _ := strings.Cut(valid, ".")
	p, sig, _ := strings.Cut(p, ".")
	tampered := h + "." + b64(`{"iss":"`+testIssuer+`","aud":"edge","exp":9999999999,"grants":[{"source":"customer-a","prefix":""}]}`) + "." + sig
	// lastBits flips the unused low bits of the signature's last character:
	// the same signature bytes under a lenient decoder.
	lastBits := valid[:len(valid)-1] + string(alphabet[strings.IndexByte(alphabet, valid[len(valid)-1])^1])
	huge := h + "." + b64(`{"pad":"`+strings.Repeat("x", 1<<20)+`"}`) + "." + sig
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, claims())

	tests := []struct {
		name string
		v    *Verifier
		tok  string
		code string // "" when the token is accepted
	}{
		// Each algorithm, with and without kid.
		{"HS256 with kid", full, sign(t, jwt.SigningMethodHS256, []byte(secret1), map[string]any{"kid": "hs1"}, claims()), ""},
		{"HS256 without kid", full, valid, ""},
		{"RS256 with kid", full, sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rs1"}, claims()), ""},
		{"RS256 without kid", full, sign(t, jwt.SigningMethodRS256, k.rsa, nil, claims()), ""},
		{"ES256 with kid", full, sign(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "es1"}, claims()), ""},
		{"ES256 without kid", full, sign(t, jwt.SigningMethodES256, k.ec, nil, claims()), ""},
		{"EdDSA with kid", full, sign(t, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "ed1"}, claims()), ""},
		{"EdDSA without kid", full, sign(t, jwt.SigningMethodEdDSA, k.ed, nil, claims()), ""},
		{"typ absent", full, sign(t, jwt.SigningMethodHS256, []byte(secret1), map[string]any{"typ": nil}, claims()), ""},

		// Keys pinned to their algorithm.
		{"alg none", full, noneTok, "token_bad_algorithm"},
		{"alg none, no signature", hsOnly, strings.TrimSuffix(noneTok, "."), "token_malformed"},
		{"alg missing", full, b64(`{"typ":"JWT"}`) + "." + p + "." + sig, "token_bad_algorithm"},
		{"alg unknown", full, b64(`{"alg":"XYZ","typ":"JWT"}`) + "." + p + "." + sig, "token_bad_algorithm"},
		{"alg not a string", full, b64(`{"alg":256}`) + "." + p + "." + sig, "token_bad_algorithm"},
		{"HS256 signed with the RS256 PEM, RS256 only", rsOnly, sign(t, jwt.SigningMethodHS256, []byte(k.rsaPEM), nil, claims()), "token_bad_algorithm"},
		{"HS256 signed with the RS256 PEM, HS256 and RS256", mixed, sign(t, jwt.SigningMethodHS256, []byte(k.rsaPEM), nil, claims()), "token_bad_signature"},
		{"HS256 signed with the RS256 PEM, kid of the RSA key", full, sign(t, jwt.SigningMethodHS256, []byte(k.rsaPEM), map[string]any{"kid": "rs1"}, claims()), "token_bad_algorithm"},
		{"RS256 with HS256 only", hsOnly, sign(t, jwt.SigningMethodRS256, k.rsa, nil, claims()), "token_bad_algorithm"},
		{"ES384", full, sign(t, jwt.SigningMethodES384, k.ec384, nil, claims()), "token_bad_algorithm"},
		{"HS512 with the right secret", full, sign(t, jwt.SigningMethodHS512, []byte(secret1), nil, claims()), "token_bad_algorithm"},
		{"PS256 with the RSA key", full, sign(t, jwt.SigningMethodPS256, k.rsa, nil, claims()), "token_bad_algorithm"},

		// kid.
		{"kid unknown", full, sign(t, jwt.SigningMethodHS256, []byte(secret1), map[string]any{"kid": "nope"}, claims()), "token_unknown_key"},
		{"kid of an RS256 key on HS256", full, sign(t, jwt.SigningMethodHS256, []byte(secret1), map[string]any{"kid": "rs1"}, claims()), "token_bad_algorithm"},
		{"kid of an HS256 key on ES256", full, sign(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "hs1"}, claims()), "token_bad_algorithm"},
		{"kid on a verifier without ids: the algorithm's keys", hsOnly, sign(t, jwt.SigningMethodHS256, []byte(secret1), map[string]any{"kid": "hs1"}, claims()), ""},
		{"kid not a string is ignored", full, sign(t, jwt.SigningMethodHS256, []byte(secret1), map[string]any{"kid": 7}, claims()), ""},

		// Rotation: several keys of one algorithm, no kid.
		{"rotation, first secret", rotation, valid, ""},
		{"rotation, second secret", rotation, sign(t, jwt.SigningMethodHS256, []byte(secret2), nil, claims()), ""},
		{"rotation, other secret", rotation, sign(t, jwt.SigningMethodHS256, []byte(secret3), nil, claims()), "token_bad_signature"},

		// Signatures.
		{"wrong secret", full, sign(t, jwt.SigningMethodHS256, []byte(secret2), nil, claims()), "token_bad_signature"},
		{"claims replaced", full, tampered, "token_bad_signature"},
		{"signature empty", full, h + "." + p + ".", "token_bad_signature"},
		{"signature of non-canonical base64", full, lastBits, "token_malformed"},
		{"ES256 by another key", full, sign(t, jwt.SigningMethodES256, k.ecOther, nil, claims()), "token_bad_signature"},
		{"EdDSA by another key", full, sign(t, jwt.SigningMethodEdDSA, k.edOther, nil, claims()), "token_bad_signature"},

		// exp, nbf, iat with leeway 30s.
		{"exp missing", full, hs(with("exp", nil)), "token_invalid"},
		{"exp past leeway", full, hs(with("exp", t0.Add(-31*time.Second).Unix())), "token_expired"},
		{"exp past within leeway", full, hs(with("exp", t0.Add(-29*time.Second).Unix())), ""},
		{"exp not a number", full, hs(with("exp", "tomorrow")), "token_malformed"},
		{"nbf beyond leeway", full, hs(with("nbf", t0.Add(31*time.Second).Unix())), "token_not_yet_valid"},
		{"nbf within leeway", full, hs(with("nbf", t0.Add(29*time.Second).Unix())), ""},
		{"nbf past", full, hs(with("nbf", t0.Add(-time.Hour).Unix())), ""},
		{"iat beyond leeway", full, hs(with("iat", t0.Add(31*time.Second).Unix())), "token_not_yet_valid"},
		{"iat within leeway", full, hs(with("iat", t0.Add(29*time.Second).Unix())), ""},
		{"iat missing", full, hs(with("iat", nil)), ""},

		// iss and aud, checked only when configured.
		{"iss wrong", full, hs(with("iss", "https://evil.example.com")), "token_bad_issuer"},
		{"iss missing", full, hs(with("iss", nil)), "token_bad_issuer"},
		{"aud wrong", full, hs(with("aud", "other")), "token_bad_audience"},
		{"aud missing", full, hs(with("aud", nil)), "token_bad_audience"},
		{"aud list holding ours", full, hs(with("aud", []string{"other", testAudience})), ""},
		{"iss unchecked", unchecked, hs(with("iss", "https://evil.example.com")), ""},
		{"aud unchecked", unchecked, hs(with("aud", "other")), ""},
		{"iss and aud absent, unchecked", unchecked, hs(with("iss", nil, "aud", nil)), ""},

		// Malformed.
		{"empty", full, "", "token_malformed"},
		{"garbage", full, "garbage", "token_malformed"},
		{"two segments", full, h + "." + p, "token_malformed"},
		{"four segments", full, valid + ".x", "token_malformed"},
		{"dots only", full, "..", "token_malformed"},
		{"header bad base64", full, "!!!." + p + "." + sig, "token_malformed"},
		{"header padded", full, h + "=." + p + "." + sig, "token_malformed"},
		{"claims bad base64", full, h + ".$$$." + sig, "token_malformed"},
		{"signature bad base64", full, h + "." + p + ".***", "token_malformed"},
		{"header not JSON", full, b64("{") + "." + p + "." + sig, "token_malformed"},
		{"claims not JSON", full, h + "." + b64("[1,2") + "." + sig, "token_malformed"},
		{"claims an array", full, h + "." + b64("[1,2]") + "." + sig, "token_malformed"},
		{"grants not a list", full, hs(with("grants", "all")), "token_malformed"},
		{"huge", full, huge, "token_malformed"},
		{"huge garbage", full, strings.Repeat("a", 1<<20), "token_malformed"},
		{"just over MaxTokenLen", full, strings.Repeat("a", MaxTokenLen+1), "token_malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, hit, err := tt.v.Verify(tt.tok)
			if hit {
				t.Errorf("hit = true on the first Verify, want false")
			}
			if tt.code == "" {
				if err != nil {
					t.Fatalf("got error %v, want the token accepted", err)
				}
				if c == nil || c.Subject != "annotator-17" {
					t.Fatalf("got claims %+v, want subject annotator-17", c)
				}
				return
			}
			if c != nil {
				t.Errorf("got claims %+v with an error, want nil", c)
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("got error %v (%T), want *auth.Error %s", err, err, tt.code)
			}
			if ae.Code != tt.code {
				t.Errorf("got code %s (%v), want %s", ae.Code, err, tt.code)
			}
			// The public message never quotes the token.
			if tt.tok != "" && len(tt.tok) > 8 && strings.Contains(ae.Message, tt.tok) {
				t.Errorf("message %q quotes the token", ae.Message)
			}
		})
	}
}

func TestVerifyGrantsDecoded(t *testing.T) {
	v := newVerifier(t, fullConfig(t), newClock(t0).Now)
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, with("grants", []map[string]string{
		{"source": "customer-a", "prefix": "datasets/42/"},
		{"source": "customer-b", "prefix": ""},
	}))
	c, _, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := []Grant{{"customer-a", "datasets/42/"}, {"customer-b", ""}}
	if len(c.Grants) != len(want) {
		t.Fatalf("got grants %+v, want %+v", c.Grants, want)
	}
	for i := range want {
		if c.Grants[i] != want[i] {
			t.Errorf("grant %d: got %+v, want %+v", i, c.Grants[i], want[i])
		}
	}
	if !c.ExpiresAt.Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("got exp %v, want %v", c.ExpiresAt.Time, t0.Add(time.Hour))
	}
}

func TestErrorUnwrap(t *testing.T) {
	v := newVerifier(t, fullConfig(t), newClock(t0).Now)
	_, _, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, with("exp", t0.Add(-time.Hour).Unix())))
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("got %v, want it to wrap jwt.ErrTokenExpired for the log", err)
	}
	var ae *Error
	if !errors.As(err, &ae) || !strings.HasPrefix(ae.Error(), "token_expired: ") {
		t.Errorf("got %q, want it to start with the code", err)
	}
	if got := ErrMissing.Error(); got != "token_missing: "+ErrMissing.Message {
		t.Errorf("got %q, want code: message", got)
	}
}

func TestAllows(t *testing.T) {
	c := &Claims{Grants: []Grant{
		{Source: "customer-a", Prefix: "cats/"},
		{Source: "customer-b", Prefix: ""},
	}}
	tests := []struct {
		source, key string
		want        bool
	}{
		{"customer-a", "cats/1.jpg", true},
		{"customer-a", "cats/", true},
		{"customer-a", "cats/sub/dir/2.png", true},
		{"customer-a", "dogs/1.jpg", false},
		{"customer-a", "cats", false},
		{"customer-a", "cat/1.jpg", false},
		{"customer-a", "Cats/1.jpg", false},
		{"customer-a", "", false},
		{"customer-b", "anything/at/all.jpg", true},
		{"customer-b", "", true},
		{"customer-c", "cats/1.jpg", false},
		{"", "cats/1.jpg", false},
		{"customer-", "cats/1.jpg", false},
	}
	for _, tt := range tests {
		t.Run(tt.source+"/"+tt.key, func(t *testing.T) {
			if got := c.Allows(tt.source, tt.key); got != tt.want {
				t.Errorf("Allows(%q, %q): got %v, want %v", tt.source, tt.key, got, tt.want)
			}
		})
	}
	t.Run("no grants", func(t *testing.T) {
		if (&Claims{}).Allows("customer-a", "cats/1.jpg") {
			t.Errorf("got true, want false")
		}
	})
}

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	_, err := NewVerifier(Config{Keys: []KeyConfig{{Alg: "HS256", Secret: "short"}}}, time.Now)
	if err == nil || !strings.Contains(err.Error(), "auth.keys[0]") {
		t.Errorf("got %v, want an error naming auth.keys[0]", err)
	}
}

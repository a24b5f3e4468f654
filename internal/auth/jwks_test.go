package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func jwkB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkEC(kid string, p *ecdsa.PublicKey) map[string]string {
	raw, _ := p.Bytes() // 0x04 || X || Y
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": jwkB64(raw[1:33]), "y": jwkB64(raw[33:])}
}

func jwkRSA(kid string, p *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "n": jwkB64(p.N.Bytes()), "e": jwkB64(big.NewInt(int64(p.E)).Bytes())}
}

func jwkOKP(kid string, p ed25519.PublicKey) map[string]string {
	return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": jwkB64(p)}
}

// jwksServer serves a JWK set that the test can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	keys    atomic.Value // []map[string]string
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	s := &jwksServer{}
	s.keys.Store(keys)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"keys": s.keys.Load()})
	}))
	t.Cleanup(s.Close)
	return s
}

func signWith(t *testing.T, m jwt.SigningMethod, kid string, key any, now time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "a", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}})
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWKS(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newJWKSServer(t, jwkEC("ec1", &ec.PublicKey), jwkRSA("rsa1", &rk.PublicKey), jwkOKP("ed1", ed.Public().(ed25519.PublicKey)))
	v, err := NewVerifier(Config{JWKSURL: srv.URL, Leeway: time.Second}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, tc := range []struct {
		name, tok, code string
	}{
		{"ES256 by kid", signWith(t, jwt.SigningMethodES256, "ec1", ec, now), ""},
		{"RS256 by kid", signWith(t, jwt.SigningMethodRS256, "rsa1", rk, now), ""},
		{"EdDSA by kid", signWith(t, jwt.SigningMethodEdDSA, "ed1", ed, now), ""},
		{"no kid", signWith(t, jwt.SigningMethodES256, "", ec, now), "token_bad_algorithm"},
		{"kid of another alg", signWith(t, jwt.SigningMethodRS256, "ec1", rk, now), "token_bad_algorithm"},
		{"wrong key for kid", signWith(t, jwt.SigningMethodES256, "ec1", ec2, now), "token_bad_signature"},
		{"HS256 with the kid (confusion)", signWith(t, jwt.SigningMethodHS256, "ec1", []byte("0123456789abcdef0123456789abcdef"), now), "token_bad_algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := v.Verify(tc.tok)
			wantCode(t, err, tc.code)
		})
	}

	t.Run("unknown kid refreshes once per interval", func(t *testing.T) {
		before := srv.fetches.Load()
		tok := signWith(t, jwt.SigningMethodES256, "ec2", ec2, now)
		now = now.Add(time.Minute) // past minInterval since the last fetch
		if _, _, err := v.Verify(tok); err == nil {
			t.Fatal("got success for a kid the set does not have")
		}
		if _, _, err := v.Verify(tok); err == nil {
			t.Fatal("got success for a kid the set does not have")
		}
		if got := srv.fetches.Load() - before; got != 1 {
			t.Errorf("got %d fetches for two unknown-kid tokens, want 1", got)
		}
		// The issuer rotates in ec2: after the interval, the kid is found.
		srv.keys.Store([]map[string]string{jwkEC("ec2", &ec2.PublicKey)})
		now = now.Add(time.Minute)
		if _, _, err := v.Verify(tok); err != nil {
			t.Errorf("after rotation: %v", err)
		}
	})
}

func TestJWKSUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	v, err := NewVerifier(Config{JWKSURL: srv.URL}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Check(t.Context()); err == nil {
		t.Error("got nil from Check with the JWKS URL failing, want an error")
	}
}

func TestParseJWKS(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := jwkEC("ok", &ec.PublicKey)
	enc := jwkEC("enc", &ec.PublicKey)
	enc["use"] = "enc"
	pinned := jwkEC("pinned", &ec.PublicKey)
	pinned["alg"] = "ES384"
	noKid := jwkEC("", &ec.PublicKey)
	badX := jwkEC("badx", &ec.PublicKey)
	badX["x"] = "!!"
	offCurve := jwkEC("off", &ec.PublicKey)
	offCurve["y"] = jwkB64(make([]byte, 32))
	for _, tc := range []struct {
		name    string
		doc     string
		want    []string
		wantErr bool
	}{
		{"not json", `{`, nil, true},
		{"no keys", `{}`, nil, true},
		{"empty", `{"keys":[]}`, []string{}, false},
		{"mixed", mustJSON(map[string]any{"keys": []any{good, enc, pinned, noKid, badX, offCurve, jwkRSA("small", &small.PublicKey),
			map[string]string{"kty": "oct", "kid": "sym", "k": "AAAA"}}}), []string{"ok"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseJWKS([]byte(tc.doc))
			if (err != nil) != tc.wantErr {
				t.Fatalf("got err %v, want error %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d keys %v, want %v", len(got), got, tc.want)
			}
			for _, k := range tc.want {
				if _, ok := got[k]; !ok {
					t.Errorf("key %q missing", k)
				}
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// FuzzParseJWKS: a JWKS document comes from the network; parsing never
// panics and every key it keeps is of a kind and size the edge accepts.
func FuzzParseJWKS(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add([]byte(mustJSON(map[string]any{"keys": []any{jwkEC("a", &ec.PublicKey)}})))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if kid == "" || k.id != kid {
				t.Fatalf("key stored under %q has id %q", kid, k.id)
			}
			switch p := k.key.(type) {
			case *rsa.PublicKey:
				if k.alg != "RS256" || p.N.BitLen() < 2048 {
					t.Fatalf("kept RSA key alg %s bits %d", k.alg, p.N.BitLen())
				}
			case *ecdsa.PublicKey:
				if k.alg != "ES256" || p.Curve != elliptic.P256() {
					t.Fatalf("kept EC key alg %s", k.alg)
				}
			case ed25519.PublicKey:
				if k.alg != "EdDSA" || len(p) != ed25519.PublicKeySize {
					t.Fatalf("kept Ed25519 key alg %s len %d", k.alg, len(p))
				}
			default:
				t.Fatalf("kept key of type %T", p)
			}
		}
	})
}

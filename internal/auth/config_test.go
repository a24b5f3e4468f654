package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	var c Config
	c.Defaults()
	if c.Leeway != 30*time.Second {
		t.Errorf("got leeway %s, want 30s", c.Leeway)
	}
	if c.CacheEntries != 10000 {
		t.Errorf("got cache_entries %d, want 10000", c.CacheEntries)
	}
	c = Config{Leeway: time.Second, CacheEntries: 7}
	c.Defaults()
	if c.Leeway != time.Second || c.CacheEntries != 7 {
		t.Errorf("got leeway %s, cache_entries %d; want the given 1s, 7", c.Leeway, c.CacheEntries)
	}
}

func TestValidate(t *testing.T) {
	k := keys(t)
	hs := KeyConfig{ID: "hs", Alg: "HS256", Secret: secret1}
	tests := []struct {
		name string
		cfg  Config
		want [][]string // each error, by substrings it contains; nil when valid
	}{
		{"one of each", fullConfig(t), nil},
		{"RS256 PKCS#1", Config{Keys: []KeyConfig{{Alg: "RS256", PublicKey: k.rsa1PEM}}}, nil},
		{"RS256 from a certificate", Config{Keys: []KeyConfig{{Alg: "RS256", PublicKey: k.rsaCert}}}, nil},
		{"ES256 from a file", Config{Keys: []KeyConfig{{Alg: "ES256", PublicKeyFile: writeFile(t, "ec.pem", k.ecPEM)}}}, nil},
		{"two HS256 without id", Config{Keys: []KeyConfig{{Alg: "HS256", Secret: secret1}, {Alg: "HS256", Secret: secret2}}}, nil},
		{"leeway 0", Config{Keys: []KeyConfig{hs}}, nil},
		{"leeway 5m", Config{Keys: []KeyConfig{hs}, Leeway: 5 * time.Minute}, nil},

		{"no keys", Config{}, [][]string{{"auth.keys: at least one key"}}},
		{"leeway negative", Config{Keys: []KeyConfig{hs}, Leeway: -time.Second}, [][]string{{"auth.leeway", "between 0 and 5m"}}},
		{"leeway too long", Config{Keys: []KeyConfig{hs}, Leeway: 10 * time.Minute}, [][]string{{"auth.leeway", "between 0 and 5m"}}},
		{"cache_entries negative", Config{Keys: []KeyConfig{hs}, CacheEntries: -1}, [][]string{{"auth.cache_entries"}}},
		{"short secret", Config{Keys: []KeyConfig{{Alg: "HS256", Secret: "tooshort"}}}, [][]string{{"auth.keys[0]", "at least 32 bytes"}}},
		{"secret 31 bytes", Config{Keys: []KeyConfig{{Alg: "HS256", Secret: secret1[:31]}}}, [][]string{{"auth.keys[0]", "at least 32 bytes"}}},
		{"empty secret", Config{Keys: []KeyConfig{{Alg: "HS256"}}}, [][]string{{"auth.keys[0]", "secret"}}},
		{"public key on HS256", Config{Keys: []KeyConfig{{Alg: "HS256", Secret: secret1, PublicKey: k.rsaPEM}}}, [][]string{{"auth.keys[0]", "not a public key"}}},
		{"RSA 1024-bit", Config{Keys: []KeyConfig{{Alg: "RS256", PublicKey: k.rsa1024}}}, [][]string{{"auth.keys[0]", "1024 bits"}}},
		{"P-384 key for ES256", Config{Keys: []KeyConfig{{Alg: "ES256", PublicKey: k.ec384PE}}}, [][]string{{"auth.keys[0]", "P-384", "ES256"}}},
		{"P-256 key for RS256", Config{Keys: []KeyConfig{{Alg: "RS256", PublicKey: k.ecPEM}}}, [][]string{{"auth.keys[0]", "ECDSA", "RS256"}}},
		{"Ed25519 key for RS256", Config{Keys: []KeyConfig{{Alg: "RS256", PublicKey: k.edPEM}}}, [][]string{{"auth.keys[0]", "Ed25519", "RS256"}}},
		{"RSA key for EdDSA", Config{Keys: []KeyConfig{{Alg: "EdDSA", PublicKey: k.rsaPEM}}}, [][]string{{"auth.keys[0]", "RSA", "EdDSA"}}},
		{"RSA key for ES256", Config{Keys: []KeyConfig{{Alg: "ES256", PublicKey: k.rsaPEM}}}, [][]string{{"auth.keys[0]", "RSA", "ES256"}}},
		{"secret on RS256", Config{Keys: []KeyConfig{{Alg: "RS256", Secret: secret1, PublicKey: k.rsaPEM}}}, [][]string{{"auth.keys[0]", "not a secret"}}},
		{"both public_key and public_key_file", Config{Keys: []KeyConfig{{Alg: "ES256", PublicKey: k.ecPEM, PublicKeyFile: writeFile(t, "ec.pem", k.ecPEM)}}}, [][]string{{"auth.keys[0]", "not both"}}},
		{"no public key", Config{Keys: []KeyConfig{{Alg: "EdDSA"}}}, [][]string{{"auth.keys[0]", "needs public_key"}}},
		{"missing file", Config{Keys: []KeyConfig{{Alg: "ES256", PublicKeyFile: filepath.Join(t.TempDir(), "nope.pem")}}}, [][]string{{"auth.keys[0]", "public_key_file", "no such file"}}},
		{"not PEM", Config{Keys: []KeyConfig{{Alg: "ES256", PublicKey: "not a key"}}}, [][]string{{"auth.keys[0]", "no PEM block"}}},
		{"private key PEM", Config{Keys: []KeyConfig{{Alg: "ES256", PublicKey: k.privPEM}}}, [][]string{{"auth.keys[0]", "not a public key"}}},
		{"bad DER", Config{Keys: []KeyConfig{{Alg: "ES256", PublicKey: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}}}, [][]string{{"auth.keys[0]"}}},
		{"alg missing", Config{Keys: []KeyConfig{{Secret: secret1}}}, [][]string{{"auth.keys[0]", "alg: required"}}},
		{"alg HS512", Config{Keys: []KeyConfig{{Alg: "HS512", Secret: secret1}}}, [][]string{{"auth.keys[0]", "alg: not accepted"}}},
		{"alg none", Config{Keys: []KeyConfig{{Alg: "none"}}}, [][]string{{"auth.keys[0]", "alg: not accepted"}}},
		{"alg lowercase", Config{Keys: []KeyConfig{{Alg: "hs256", Secret: secret1}}}, [][]string{{"auth.keys[0]", "alg: not accepted"}}},
		{"duplicate id", Config{Keys: []KeyConfig{hs, {ID: "hs", Alg: "ES256", PublicKey: k.ecPEM}}}, [][]string{{"auth.keys[1].id", "duplicate id"}}},
		{"second key bad", Config{Keys: []KeyConfig{hs, {Alg: "RS256", PublicKey: k.rsa1024}}}, [][]string{{"auth.keys[1]", "1024 bits"}}},
		{"every problem at once", Config{
			Leeway: time.Hour,
			Keys: []KeyConfig{
				{ID: "a", Alg: "HS256", Secret: "short"},
				{ID: "a", Alg: "ES256", PublicKey: k.ec384PE},
				{Alg: "RS256", Secret: secret1},
			},
		}, [][]string{
			{"auth.leeway", "between 0 and 5m"},
			{"auth.keys[0]: ", "at least 32 bytes"},
			{"auth.keys[1].id", "duplicate"},
			{"auth.keys[1]: ", "P-384"},
			{"auth.keys[2]: ", "not a secret"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d %q", len(errs), errs, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				for _, w := range want {
					if !strings.Contains(errs[i].Error(), w) {
						t.Errorf("error %d: got %q, want it to contain %q", i, errs[i], w)
					}
				}
			}
		})
	}
}

func TestValidateSecretNotQuoted(t *testing.T) {
	// A secret that is merely short is still a secret: never echo it.
	const s = "hunter2-is-a-secret"
	for _, err := range (&Config{Keys: []KeyConfig{{Alg: "HS256", Secret: s}, {Alg: "RS256", Secret: s}}}).Validate() {
		if strings.Contains(err.Error(), s) {
			t.Errorf("got %q, want the secret left out", err)
		}
	}
}

// TestValidateValuesNotEchoed: no message quotes the operator's values,
// a key file's path or a leeway included (a secret may sit in any key).
func TestValidateValuesNotEchoed(t *testing.T) {
	const path = "/nonexistent/s3cr3t-dir/app.pub.pem"
	cfg := Config{Leeway: 7 * time.Minute, Keys: []KeyConfig{{Alg: "ES256", PublicKeyFile: path}}}
	errs := cfg.Validate()
	if len(errs) != 2 {
		t.Fatalf("got %d problems %v, want 2 (leeway, public_key_file)", len(errs), errs)
	}
	for _, err := range errs {
		for _, v := range []string{"s3cr3t", "7m"} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("got %q, want the value %q left out", err, v)
			}
		}
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	k := keys(t)
	tests := []struct {
		name string
		pem  string
		want func(any) bool
	}{
		{"PKIX RSA", k.rsaPEM, func(p any) bool { _, ok := p.(*rsa.PublicKey); return ok }},
		{"PKCS#1 RSA", k.rsa1PEM, func(p any) bool { _, ok := p.(*rsa.PublicKey); return ok }},
		{"certificate", k.rsaCert, func(p any) bool { _, ok := p.(*rsa.PublicKey); return ok }},
		{"ECDSA", k.ecPEM, func(p any) bool { _, ok := p.(*ecdsa.PublicKey); return ok }},
		{"Ed25519", k.edPEM, func(p any) bool { _, ok := p.(ed25519.PublicKey); return ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePublicKeyPEM([]byte(tt.pem))
			if err != nil || !tt.want(p) {
				t.Errorf("got %T, %v; want the key", p, err)
			}
		})
	}
	for _, bad := range []string{"", "garbage", k.privPEM, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if p, err := ParsePublicKeyPEM([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKeyPEM(%.20q): got %T, want an error", bad, p)
		}
	}
}
